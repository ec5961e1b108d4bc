// filegate's upload page: drop files, watch them upload (tus, resumable), see their verdicts.
// The server renders the markup and its settings (data-* on <body>); this wires it up.

import { defaultOptions, isSupported, Upload } from "tus-js-client";
import {
  listenForToken,
  rememberToken,
  storedToken,
  tellParent,
  tokenFromFragment,
} from "./token.js";
import { FileUpload } from "./upload.js";
import { download, waitForVerdict } from "./verdict.js";
import { createRow, element, formatSize, render, showFindings } from "./view.js";

// Three at a time: more only split the same bandwidth and hold more server upload slots.
const MAX_ACTIVE = 3;
const FINISHED = "filegate:finished";
// Finished uploads remembered for this tab, so a reload still shows their verdicts.
const MAX_FINISHED = 50;

const config = document.body.dataset;
const tusEndpoint = new URL(config.tusEndpoint, location.href).href;
const filesEndpoint = new URL(config.filesEndpoint, location.href).href;
const embedders = JSON.parse(config.embedders || "[]");
const list = document.getElementById("files");
const zone = document.getElementById("drop");
const picker = document.getElementById("pick");
const notice = document.getElementById("notice");
const unfinished = document.getElementById("unfinished");
const uploads = [];
let token = null;

function setToken(value) {
  const first = token === null;
  token = value;
  rememberToken(value);
  for (const upload of uploads) upload.token = value;
  document.body.dataset.ready = "true";
  notice.hidden = true;
  if (first) {
    showFinished();
    showUnfinished();
  }
}

function addFiles(files) {
  if (token === null) return;
  for (const file of files) {
    const upload = new FileUpload(file, { endpoint: tusEndpoint, token, onChange: changed });
    upload.item = createRow(list, file.name, file.size, {
      pause: "Pause",
      resume: "Resume",
      download: "Download",
    });
    upload.item.addEventListener("click", (event) => act(upload, event.target.dataset.action));
    uploads.push(upload);
    render(upload.item, upload);
  }
  pump();
}

function act(upload, action) {
  if (action === "pause") upload.pause();
  else if (action === "resume") upload.resume();
  else if (action === "download") save(upload.item, upload.record);
}

function pump() {
  const busy = new Set(["starting", "uploading", "offline"]);
  let active = uploads.filter((u) => busy.has(u.state)).length;
  for (const upload of uploads) {
    if (active >= MAX_ACTIVE) break;
    if (upload.state === "queued") {
      upload.state = "starting";
      active += 1;
      upload.start().then(showUnfinished, (error) => {
        upload.set("failed", { error: error.message });
      });
    }
  }
}

function changed(upload) {
  if (upload.state === "done") {
    upload.state = "inspecting";
    const file = { id: upload.fileId, name: upload.file.name, size: upload.file.size };
    remember(file);
    tellParent(embedders, { type: "filegate:uploaded", file });
    follow(upload.item, upload);
    pump();
  } else if (upload.state === "failed" || upload.state === "paused") {
    pump();
  }
  if (upload.state !== "starting") render(upload.item, upload);
}

/** Poll the file's verdict onto its row; ``row`` is a FileUpload or a remembered record. */
function follow(item, row) {
  render(item, row);
  waitForVerdict(filesEndpoint, () => token, row.fileId, (record) => {
    row.record = record;
  })
    .then((record) => {
      row.state = record === null ? "waiting" : record.state;
      if (record !== null) {
        showFindings(item, record.state === "rejected" ? record.findings : []);
        tellParent(embedders, { type: "filegate:verdict", file: summary(record) });
      }
      render(item, row);
    })
    .catch((error) => {
      Object.assign(row, { state: "failed", error: error.message });
      render(item, row);
    });
}

function summary(record) {
  const findings = record.findings.map(({ code, message }) => ({ code, message }));
  return { id: record.id, name: record.name, state: record.state, findings };
}

function save(item, record) {
  download(filesEndpoint, () => token, record).catch((error) => {
    item.querySelector(".status").textContent = `Download failed: ${error.message}`;
  });
}

function remember(entry) {
  const finished = readFinished().filter((known) => known.id !== entry.id);
  finished.push(entry);
  try {
    sessionStorage.setItem(FINISHED, JSON.stringify(finished.slice(-MAX_FINISHED)));
  } catch {
    // Without storage a reload forgets the verdicts shown; the files are unaffected.
  }
}

function readFinished() {
  try {
    return JSON.parse(sessionStorage.getItem(FINISHED) || "[]");
  } catch {
    return [];
  }
}

function showFinished() {
  for (const entry of readFinished()) {
    const row = { state: "inspecting", fileId: entry.id, size: entry.size, bytesSent: 0 };
    const item = createRow(list, entry.name, entry.size, { download: "Download" });
    item.addEventListener("click", (event) => {
      if (event.target.dataset.action === "download") save(item, row.record);
    });
    follow(item, row);
  }
}

/** Uploads this browser started and did not finish: dropping the same file resumes one. */
async function showUnfinished() {
  const stored = await defaultOptions.urlStorage.findAllUploads();
  const onPage = new Set(uploads.map((u) => `${u.file.name}\n${u.file.size}`));
  const open = stored.filter(
    (entry) =>
      entry.urlStorageKey.includes(tusEndpoint) &&
      !onPage.has(`${entry.metadata?.filename}\n${entry.size}`),
  );
  const items = open.map((entry) => {
    const item = element("li", "unfinished-file");
    item.append(
      element("span", "name", entry.metadata?.filename ?? "a file"),
      element("span", "size", formatSize(entry.size)),
    );
    const forget = element("button", "forget", "Forget");
    forget.type = "button";
    forget.addEventListener("click", () => discard(entry));
    item.append(forget);
    return item;
  });
  unfinished.querySelector("ul").replaceChildren(...items);
  unfinished.hidden = items.length === 0;
}

async function discard(entry) {
  const headers = { Authorization: `Bearer ${token}` };
  await Upload.terminate(entry.uploadUrl, { headers }).catch(() => {});
  await defaultOptions.urlStorage.removeUpload(entry.urlStorageKey);
  await showUnfinished();
}

function wireDropZone() {
  // A file dropped beside the zone must not make the browser navigate away to it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => event.preventDefault());
  }
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles([...(event.dataTransfer?.files ?? [])]);
  });
  picker.addEventListener("change", () => {
    addFiles([...picker.files]);
    picker.value = "";
  });
  window.addEventListener("online", () => {
    for (const upload of uploads) if (upload.state === "offline") upload.resume();
  });
}

function boot() {
  if (!isSupported) {
    notice.textContent = "This browser cannot upload files resumably.";
    notice.hidden = false;
    return;
  }
  wireDropZone();
  listenForToken(embedders, setToken);
  const found = tokenFromFragment() || storedToken();
  if (found) setToken(found);
  else notice.hidden = false;
  tellParent(embedders, { type: "filegate:ready" });
}

boot();
