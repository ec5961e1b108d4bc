// What every browser script here shares: the system Chromium, a clean failure (one line on
// stderr, exit 1) and a watchdog that ends the script whatever hangs. Playwright's own browser
// download is never needed.
import { chromium } from "playwright-core";

export const EXECUTABLE = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const LAUNCH_TIMEOUT_MS = 20_000;

// A `fail(message)` for `script`: playwright's messages carry terminal colour codes, so only
// the text is kept.
export function failure(script) {
  return (message) => {
    const plain = String(message).replace(/\x1b\[[0-9;]*m/g, "");
    process.stderr.write(`${script}: ${plain}\n`);
    process.exit(1);
  };
}

// End the script with `fail` after `ms`, whatever hangs (a browser that never answers, a
// stuck close).
export function watchdog(fail, ms) {
  setTimeout(() => fail(`gave up after ${ms / 1000} s`), ms).unref();
}

// Headless Chromium as the tests run it, or `fail` with the reason.
export async function launch(fail) {
  try {
    return await chromium.launch({
      executablePath: EXECUTABLE,
      args: ["--headless", "--no-sandbox", "--disable-background-networking"],
      timeout: LAUNCH_TIMEOUT_MS,
    });
  } catch (error) {
    fail(`could not launch Chromium at ${EXECUTABLE}: ${error.message}`);
  }
}
