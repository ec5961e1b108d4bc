// The verdict of an uploaded file, polled until inspection decides; and its download.

const FIRST_POLL_MS = 500;
const MAX_POLL_MS = 5000;
// A file nobody decided after this long is shown as still waiting, not polled forever.
const GIVE_UP_MS = 10 * 60 * 1000;

/** Poll until the file is decided; ``token()`` is asked each time (the app may replace it). */
export async function waitForVerdict(filesEndpoint, token, fileId, onRecord) {
  const started = Date.now();
  let delay = FIRST_POLL_MS;
  while (Date.now() - started < GIVE_UP_MS) {
    const response = await fetch(filesEndpoint + encodeURIComponent(fileId), {
      headers: { Authorization: `Bearer ${token()}` },
      cache: "no-store",
    }).catch(() => null);
    if (response && response.ok) {
      const record = await response.json();
      onRecord(record);
      if (record.state !== "quarantined") return record;
    } else if (response && response.status !== 404 && response.status < 500) {
      throw new Error(await problemDetail(response));
    }
    await sleep(delay);
    delay = Math.min(delay * 1.5, MAX_POLL_MS);
  }
  return null;
}

/** Fetch a clean file with the bearer token and save it under its name. */
export async function download(filesEndpoint, token, record) {
  const response = await fetch(`${filesEndpoint}${encodeURIComponent(record.id)}/content`, {
    headers: { Authorization: `Bearer ${token()}` },
  });
  if (!response.ok) throw new Error(await problemDetail(response));
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = record.name;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has started reading the blob; give it time before the URL is revoked.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function problemDetail(response) {
  try {
    const problem = await response.json();
    if (problem && problem.detail) return problem.detail;
  } catch {
    // Not JSON.
  }
  return `The server answered ${response.status}.`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
