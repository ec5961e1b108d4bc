// Drive filegate's upload page in headless Chromium through issue #19's "done when":
//
//   node upload_page.mjs '{"page": URL, "token": T, "big": PATH, "clean": PATH,
//                          "rejected": PATH, "out": DIR, "docsScreenshot": PATH|null}'
//
// Drops the three files on the page (a real drop event whose DataTransfer holds real files),
// cuts the network under the big upload and restores it, reloads the page mid-upload and
// drops the big file again, pauses and resumes it, waits for the three verdicts, downloads
// the clean file and screenshots the page. The big upload's PATCHes are held at chosen offsets
// (page.route) so each step happens mid-upload on any machine, however fast.
//
// Prints one line of JSON: what the page showed, every request the browser made, and the
// offsets seen. Exit 0 when the run completed (the Python test judges the report), 1 with the
// reason on stderr otherwise. Uses the system Chromium, never playwright's download.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { failure, launch, watchdog } from "./harness.mjs";

const MIB = 1024 * 1024;
const STEP_TIMEOUT_MS = 30_000;
// Inspecting 50 MiB on a busy two-core runner: the one step given longer.
const VERDICT_TIMEOUT_MS = 60_000;
const OVERALL_TIMEOUT_MS = 140_000;
const OFFLINE_MS = 3_000;
// Where the big upload is held: its network cut, the reload, the pause (tus chunks are 8 MiB).
const CUT_AT = 16 * MIB;
const RELOAD_AT = 32 * MIB;
const PAUSE_AT = 40 * MIB;

const fail = failure("upload_page.mjs");

const args = JSON.parse(process.argv[2] ?? "null") ?? fail("usage: node upload_page.mjs JSON");
watchdog(fail, OVERALL_TIMEOUT_MS);

const bigName = basename(args.big);
const requests = []; // every request the browser made: {phase, method, url, offset}
let phase = "load";
let bigUrl = null; // the big file's tus upload URL, from the POST that created it
const holds = new Map(); // offset -> {route, reached: Promise}

function holdAt(offset) {
  let reached;
  const hold = { route: null, promise: new Promise((resolve) => (reached = resolve)) };
  hold.reached = reached;
  holds.set(offset, hold);
  return hold;
}

/** Wait until the big upload's PATCH from ``offset`` is held, or fail saying so. */
function held(hold, offset) {
  const late = new Promise((_, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PATCH from offset ${offset} came`)), STEP_TIMEOUT_MS);
    hold.promise.then(() => clearTimeout(timer));
  });
  return Promise.race([hold.promise, late]);
}

async function onRoute(route) {
  const request = route.request();
  const offset = Number(request.headers()["upload-offset"]);
  const hold = request.method() === "PATCH" && request.url() === bigUrl && holds.get(offset);
  if (hold && hold.route === null) {
    hold.route = route; // not sent until the test releases or aborts it
    hold.reached();
    return;
  }
  await route.continue();
}

/** The upload's offset as the server reports it (tus HEAD), asked from node, not the page. */
async function serverOffset() {
  const response = await fetch(bigUrl, {
    method: "HEAD",
    headers: { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${args.token}` },
  });
  if (response.status !== 200) throw new Error(`HEAD ${bigUrl} answered ${response.status}`);
  return Number(response.headers.get("upload-offset"));
}

/** Drop ``paths`` on the page's drop zone: a real drop event carrying real File objects. */
async function drop(page, paths) {
  // Playwright cannot drag from the desktop: a file input of the test's own (not the page's
  // picker) turns the paths into Files, which go into a DataTransfer dropped on the zone.
  await page.evaluate(() => {
    const input = document.createElement("input");
    input.type = "file";
    input.multiple = true;
    input.id = "test-files";
    input.hidden = true;
    document.body.append(input);
  });
  await page.setInputFiles("#test-files", paths);
  await page.evaluate(() => {
    const input = document.getElementById("test-files");
    const data = new DataTransfer();
    for (const file of input.files) data.items.add(file);
    input.remove();
    const zone = document.getElementById("drop");
    for (const type of ["dragenter", "dragover", "drop"]) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    }
  });
}

function row(page, name) {
  return page.locator(`li.file[data-name="${name}"]`);
}

async function waitState(page, name, states, timeout = STEP_TIMEOUT_MS) {
  const wanted = states.map((s) => `li.file[data-name="${name}"][data-state="${s}"]`).join(",");
  await page.waitForSelector(wanted, { timeout });
}

async function rows(page) {
  return page.$$eval("li.file", (items) =>
    items.map((item) => ({
      name: item.dataset.name,
      state: item.dataset.state,
      fileId: item.dataset.fileId ?? null,
      status: item.querySelector(".status")?.textContent ?? "",
      findings: [...item.querySelectorAll(".finding")].map((f) => ({
        code: f.dataset.code,
        message: f.textContent,
      })),
    })),
  );
}

function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 900, height: 820 }, acceptDownloads: true });
  context.on("request", (request) => {
    const offset = request.headers()["upload-offset"];
    requests.push({ phase, method: request.method(), url: request.url(), offset: offset === undefined ? null : Number(offset) });
  });
  context.on("response", async (response) => {
    const request = response.request();
    const metadata = request.headers()["upload-metadata"] ?? "";
    if (request.method() === "POST" && metadata.includes(Buffer.from(bigName).toString("base64"))) {
      bigUrl = new URL(response.headers().location, request.url()).href;
    }
  });
  await context.route("**/v1/tus/**", onRoute);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const console_ = [];
  page.on("console", (message) => console_.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => console_.push(`pageerror: ${error.message}`));

  await page.goto(`${args.page}#token=${args.token}`, { waitUntil: "load" });
  await page.waitForSelector('body[data-ready="true"]');
  const report = { console: console_, addressAfterLoad: page.url() };

  // 1. Three files dropped at once; the big one is held at CUT_AT, then the network goes.
  const cut = holdAt(CUT_AT);
  const reload = holdAt(RELOAD_AT);
  phase = "upload";
  await drop(page, [args.clean, args.rejected, args.big]);
  await held(cut, CUT_AT);
  phase = "offline";
  await context.setOffline(true);
  await cut.route.abort("internetdisconnected");
  await waitState(page, bigName, ["offline"]);
  report.offlineStatus = await row(page, bigName).locator(".status").textContent();
  await page.waitForTimeout(OFFLINE_MS);
  phase = "online";
  await context.setOffline(false);

  // 2. The upload carries on from the server's offset until it is held again at RELOAD_AT.
  await held(reload, RELOAD_AT);
  report.offsetBeforeReload = await serverOffset();
  await waitState(page, basename(args.clean), ["clean"]);
  await waitState(page, basename(args.rejected), ["rejected"]);
  report.rowsBeforeReload = await rows(page);
  await shoot(page, args.docsScreenshot);
  await shoot(page, join(args.out, "upload-before-reload.png"));
  const [saved] = await Promise.all([
    page.waitForEvent("download"),
    row(page, basename(args.clean)).locator('button[data-action="download"]').click(),
  ]);
  report.download = { name: saved.suggestedFilename(), path: join(args.out, "downloaded") };
  await saved.saveAs(report.download.path);

  // 3. Reload mid-upload; the page keeps its token and shows the unfinished upload; the same
  // file dropped again continues from the server's offset.
  phase = "reload";
  await page.reload({ waitUntil: "load" });
  await reload.route.abort("aborted").catch(() => {}); // its page is gone already
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector("#unfinished:not([hidden])");
  report.unfinishedAfterReload = await page.$$eval("#unfinished:not([hidden]) .name", (names) =>
    names.map((n) => n.textContent),
  );
  report.rowsAfterReload = await rows(page);
  const pause = holdAt(PAUSE_AT);
  phase = "resumed";
  await drop(page, [args.big]);

  // 4. Pause while a PATCH is in flight, then resume: it continues and finishes.
  await held(pause, PAUSE_AT);
  await row(page, bigName).locator('button[data-action="pause"]').click();
  await waitState(page, bigName, ["paused"]);
  await pause.route.abort("aborted").catch(() => {});
  report.offsetWhilePaused = await serverOffset();
  await row(page, bigName).locator('button[data-action="resume"]').click();
  await waitState(page, bigName, ["clean", "rejected", "failed"], VERDICT_TIMEOUT_MS);
  report.rowsAtEnd = await rows(page);
  report.bigUrl = bigUrl;
  report.unfinishedAtEnd = await page.$$eval("#unfinished .name", (names) => names.length);
  await shoot(page, join(args.out, "upload-done.png"));
  report.downloadedSha256 = sha256(report.download.path);
  return report;
}

async function shoot(page, path) {
  if (path) writeFileSync(path, await page.screenshot({ fullPage: true, type: "png" }));
}

const browser = await launch(fail);
let report;
try {
  report = await run(browser);
} catch (error) {
  await browser.close().catch(() => {});
  fail(`${error.stack}\nrequests: ${JSON.stringify(requests.slice(-20))}`);
}
await browser.close();
process.stdout.write(`${JSON.stringify({ ...report, requests })}\n`);
process.exit(0);
