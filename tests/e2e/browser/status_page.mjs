// Open filegate's status page in headless Chromium, screenshot it and report what it shows.
//
//   node status_page.mjs URL SCREENSHOT.png [ADMIN_KEY]
//
// Prints one line of JSON to stdout: {status, title, cards: [{question, verdict, heading,
// summary}], text}, read from the rendered DOM. ADMIN_KEY, if given, is sent on every request
// as "Authorization: Bearer ADMIN_KEY".
//
// Exit codes: 0 the page loaded with a 2xx status; 3 it loaded with another status (the JSON
// is still printed); 1 anything else (bad arguments, no browser, timeout), with the reason on
// stderr. Uses the system Chromium: playwright's own browser download is never needed.
import { writeFileSync } from "node:fs";
import { failure, launch, watchdog } from "./harness.mjs";

const PAGE_TIMEOUT_MS = 15_000;
// Whatever hangs (a browser that never answers, a stuck close), the script ends by then.
const OVERALL_TIMEOUT_MS = 50_000;

const fail = failure("status_page.mjs");

const [url, screenshot, key] = process.argv.slice(2);
if (!url || !screenshot) {
  fail("usage: node status_page.mjs URL SCREENSHOT.png [ADMIN_KEY]");
}

watchdog(fail, OVERALL_TIMEOUT_MS);

const browser = await launch(fail);

let report;
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    extraHTTPHeaders: key ? { Authorization: `Bearer ${key}` } : {},
  });
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const response = await page.goto(url, { waitUntil: "load", timeout: PAGE_TIMEOUT_MS });
  if (response === null) {
    throw new Error(`no response for ${url}`);
  }
  const png = await page.screenshot({ fullPage: true, type: "png" });
  writeFileSync(screenshot, png);
  const cards = await page.$$eval("section.card", (sections) =>
    sections.map((section) => ({
      question: section.dataset.question ?? null,
      verdict: section.dataset.verdict ?? null,
      heading: section.querySelector("h2")?.innerText.trim() ?? null,
      verdictText: section.querySelector("p.verdict")?.innerText.trim() ?? null,
      summary: section.querySelector("p.summary")?.innerText.trim() ?? null,
    })),
  );
  report = {
    status: response.status(),
    title: await page.title(),
    cards,
    text: await page.evaluate(() => document.body?.innerText ?? ""),
  };
} catch (error) {
  await browser.close().catch(() => {});
  fail(`could not load ${url}: ${error.message}`);
}
await browser.close();

process.stdout.write(`${JSON.stringify(report)}\n`);
if (report.status < 200 || report.status > 299) {
  process.stderr.write(`status_page.mjs: ${url} answered HTTP ${report.status}\n`);
  process.exit(3);
}
process.exit(0);
