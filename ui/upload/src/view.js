// The list of files on the page: one <li> per file, built with textContent only (the page's
// CSP has Trusted Types on, so no HTML strings), its state in data-state for styles and tests.

const STATUS = {
  queued: () => "Waiting to start",
  uploading: (row) => `Uploading… ${percent(row)} %`,
  paused: (row) => `Paused at ${percent(row)} %`,
  offline: (row) => `Waiting for the network (${percent(row)} % sent)`,
  failed: (row) => `Upload failed: ${row.error}`,
  inspecting: () => "Uploaded; being checked…",
  clean: () => "Accepted",
  rejected: () => "Rejected",
  waiting: () => "Uploaded; the check is taking longer than usual",
};

export function createRow(list, name, size, actions) {
  const item = element("li", "file");
  const head = element("div", "head");
  head.append(element("span", "name", name), element("span", "size", formatSize(size)));
  const progress = element("progress");
  progress.max = 100;
  progress.setAttribute("aria-label", name);
  progress.value = 0;
  const buttons = element("div", "actions");
  for (const [key, label] of Object.entries(actions)) {
    const button = element("button", key, label);
    button.type = "button";
    button.dataset.action = key;
    buttons.append(button);
  }
  item.append(head, progress, element("p", "status"), buttons, element("ul", "findings"));
  item.dataset.name = name;
  list.append(item);
  return item;
}

/** Show ``row`` (a FileUpload, or a finished record) on its list item. */
export function render(item, row) {
  item.dataset.state = row.state;
  if (row.fileId) item.dataset.fileId = row.fileId;
  item.querySelector("progress").value = percent(row);
  item.querySelector(".status").textContent = STATUS[row.state](row);
  for (const button of item.querySelectorAll("button")) {
    button.hidden = !visible(button.dataset.action, row.state);
  }
}

export function showFindings(item, findings) {
  const list = item.querySelector(".findings");
  list.replaceChildren(
    ...findings.map((finding) => {
      const entry = element("li", "finding", finding.message);
      entry.dataset.code = finding.code;
      return entry;
    }),
  );
}

function visible(action, state) {
  if (action === "pause") return state === "uploading";
  if (action === "resume") return state === "paused" || state === "failed";
  if (action === "download") return state === "clean";
  return false;
}

function percent(row) {
  if (["inspecting", "clean", "rejected", "waiting"].includes(row.state)) return 100;
  const size = row.file ? row.file.size : row.size;
  return size ? Math.floor((row.bytesSent / size) * 100) : 0;
}

export function formatSize(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
