// Review files in filegate's console (/admin) with headless Chromium, as an operator would.
//
//   node admin_console.mjs BASE_URL ADMIN_KEY RELEASE_ID DELETE_ID SCREENSHOT.png
//
// Signs in by pasting ADMIN_KEY into the form, filters the list to rejected files, opens
// RELEASE_ID from the list and releases it with a reason, opens DELETE_ID and deletes it with a
// reason, then reads the audit log. Takes a screenshot of the released file's page. Prints one
// line of JSON to stdout: what each page showed, and every URL the browser requested.
//
// Exit codes: 0 done; 1 anything else (a step failed, no browser, timeout), with the reason on
// stderr. Uses the system Chromium: playwright's own browser download is never needed.
import { writeFileSync } from "node:fs";
import { failure, launch, watchdog } from "./harness.mjs";

const STEP_TIMEOUT_MS = 15_000;
// Whatever hangs (a browser that never answers, a stuck close), the script ends by then.
const OVERALL_TIMEOUT_MS = 80_000;

const fail = failure("admin_console.mjs");

const [base, key, releaseId, deleteId, screenshot] = process.argv.slice(2);
if (!base || !key || !releaseId || !deleteId || !screenshot) {
  fail("usage: node admin_console.mjs BASE_URL ADMIN_KEY RELEASE_ID DELETE_ID SCREENSHOT.png");
}

watchdog(fail, OVERALL_TIMEOUT_MS);

const browser = await launch(fail);

const requested = [];

async function rows(page) {
  return page.$$eval("main table tr", (trs) =>
    trs.slice(1).map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim())),
  );
}

async function act(page, action, reason) {
  const form = page.locator(`form[data-action="${action}"]`);
  await form.locator("textarea[name=reason]").fill(reason);
  await Promise.all([page.waitForURL(/\/admin/), form.locator("button[type=submit]").click()]);
}

async function review(page) {
  const report = {};
  await page.goto(`${base}/admin`);
  report.signInUrl = page.url();
  await page.fill("input[name=key]", key);
  await Promise.all([page.waitForURL(`${base}/admin`), page.click("button[type=submit]")]);
  report.cookies = (await page.context().cookies()).map((c) => ({
    name: c.name,
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
    path: c.path,
  }));

  await page.selectOption("select[name=state]", "rejected");
  await Promise.all([page.waitForURL(/state=rejected/), page.click("form.filters button")]);
  report.rejectedList = await rows(page);

  await Promise.all([page.waitForURL(/\/admin\/files\//), page.click(`a[href$="${releaseId}"]`)]);
  report.releaseActions = await page.$$eval("form[data-action]", (f) =>
    f.map((form) => form.dataset.action),
  );
  await act(page, "release", "Empty placeholder files are expected from the intake form.");
  report.afterRelease = {
    url: page.url(),
    notice: await page.locator("p.notice").innerText(),
    audit: await page.$$eval("section:last-of-type table tr", (trs) =>
      trs.slice(1).map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim())),
    ),
  };
  writeFileSync(screenshot, await page.screenshot({ fullPage: true, type: "png" }));

  await page.goto(`${base}/admin/files/${deleteId}`);
  await act(page, "delete", "Uploaded to the wrong tenant by mistake.");
  report.afterDelete = { url: page.url(), audit: await rows(page) };
  return report;
}

let report;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("request", (request) => requested.push(request.url()));
  report = await review(page);
  report.requested = requested;
} catch (error) {
  await browser.close().catch(() => {});
  fail(`review failed: ${error.message}\nrequested: ${requested.join(" ")}`);
}
await browser.close();

process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
