// The upload page embedded in an application, as docs/upload-page.md shows: an iframe, the
// token handed over by postMessage, the verdict posted back.
//
//   node upload_embed.mjs '{"filegate": ORIGIN, "key": UPLOAD_KEY, "allowed": PORT,
//                           "other": PORT, "file": PATH}'
//
// Serves the application's page on 127.0.0.1:ALLOWED (an origin filegate lists in
// cors_origins) and on 127.0.0.1:OTHER (one it does not), with a tiny backend route,
// /filegate-token, that mints an upload token with the API key. Drops FILE into the frame on
// the allowed origin and waits for its verdict message; opens the other origin's page to see
// the frame refused. Prints one line of JSON; exit 1 with the reason on stderr.
import { createServer } from "node:http";
import { failure, launch, watchdog } from "./harness.mjs";

const STEP_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 60_000;

const fail = failure("upload_embed.mjs");

const args = JSON.parse(process.argv[2] ?? "null") ?? fail("usage: node upload_embed.mjs JSON");
watchdog(fail, OVERALL_TIMEOUT_MS);

// The application's page: the snippet of docs/upload-page.md, with its origin filled in.
const APP_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The application</title>
<script>
  const FILEGATE = ${JSON.stringify(args.filegate)};
  window.messages = [];
  window.addEventListener("message", async (event) => {
    const frame = document.getElementById("filegate");
    if (event.origin !== FILEGATE || event.source !== frame.contentWindow) return;
    window.messages.push(event.data);
    if (event.data.type === "filegate:ready") {
      const { token } = await (await fetch("/filegate-token", { method: "POST" })).json();
      frame.contentWindow.postMessage({ type: "filegate:token", token }, FILEGATE);
    }
  });
</script></head>
<body><h1>The application</h1>
<iframe id="filegate" src="${args.filegate}/upload" width="800" height="520"></iframe>
</body></html>`;

/** The application's backend: its page, and an upload token minted with its API key. */
async function serve(request, response) {
  if (request.method === "POST" && request.url === "/filegate-token") {
    const minted = await fetch(`${args.filegate}/v1/upload-tokens`, {
      method: "POST",
      headers: { Authorization: `Bearer ${args.key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ max_files: 1, expires_in: 600 }),
    });
    response.writeHead(minted.status, { "Content-Type": "application/json" });
    response.end(await minted.text());
    return;
  }
  response.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  response.end(APP_PAGE);
}

function listen(port) {
  const server = createServer((request, response) => serve(request, response).catch(fail));
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

async function frameOf(page) {
  const handle = await page.waitForSelector("#filegate");
  return handle.contentFrame();
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const hosts = new Set();
  context.on("request", (request) => hosts.add(new URL(request.url()).hostname));
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  await page.goto(`http://127.0.0.1:${args.allowed}/`, { waitUntil: "load" });
  const frame = await frameOf(page);
  await frame.waitForSelector('body[data-ready="true"]');
  await frame.evaluate(() => {
    const input = document.createElement("input");
    input.type = "file";
    input.id = "test-files";
    input.hidden = true;
    document.body.append(input);
  });
  await frame.setInputFiles("#test-files", [args.file]);
  await frame.evaluate(() => {
    const data = new DataTransfer();
    data.items.add(document.getElementById("test-files").files[0]);
    const zone = document.getElementById("drop");
    zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
  });
  await page.waitForFunction(
    () => window.messages.some((m) => m.type === "filegate:verdict"),
    null,
    { timeout: STEP_TIMEOUT_MS },
  );
  const report = {
    messages: await page.evaluate(() => window.messages),
    frameAddress: frame.url(),
    frameStorage: await frame.evaluate(() => Object.keys(sessionStorage)),
  };

  // The same page on an origin filegate does not list: the browser refuses to frame it.
  const other = await context.newPage();
  await other.goto(`http://127.0.0.1:${args.other}/`, { waitUntil: "load" });
  const refused = await frameOf(other);
  // The refusal is the browser's error page in the frame; give the frame time to get there.
  for (let waited = 0; refused && !refused.url().startsWith("chrome-error:") && waited < 5000; waited += 100) {
    await other.waitForTimeout(100);
  }
  report.otherOriginFrame = {
    address: refused ? refused.url() : null,
    dropZone: refused ? (await refused.$("#drop")) !== null : false,
    messages: await other.evaluate(() => window.messages),
  };
  report.hosts = [...hosts];
  return report;
}

const servers = [await listen(args.allowed), await listen(args.other)];
const browser = await launch(fail);
let report;
try {
  report = await run(browser);
} catch (error) {
  await browser.close().catch(() => {});
  fail(error.stack);
}
await browser.close();
for (const server of servers) server.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
