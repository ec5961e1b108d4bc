// One file's resumable upload: tus-js-client with the retry, offline and resume rules of
// this page, reported to the view as states.

import { Upload } from "tus-js-client";

// Small enough that a lost connection costs at most one chunk and progress moves visibly,
// large enough that the server's fsync per PATCH stays a small part of the time.
export const CHUNK_SIZE = 8 * 1024 * 1024;
// Retries for server errors and dropped connections while the browser thinks it is online;
// offline, the upload waits for the "online" event instead of burning these.
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000];
const RETRY_STATUSES = new Set([0, 409, 423, 429, 500, 502, 503, 504]);

export class FileUpload {
  constructor(file, { endpoint, token, onChange }) {
    this.file = file;
    this.token = token;
    this.onChange = onChange;
    this.state = "queued";
    this.bytesSent = 0;
    this.error = null;
    this.fileId = null;
    this.resumed = false;
    this.tus = new Upload(file, {
      endpoint,
      chunkSize: CHUNK_SIZE,
      retryDelays: RETRY_DELAYS,
      // No filetype when the browser does not know one: the server sniffs the content anyway.
      metadata: file.type ? { filename: file.name, filetype: file.type } : { filename: file.name },
      // The same file dropped again (after a reload, a crash) continues its upload; the URL is
      // forgotten once the upload is complete.
      removeFingerprintOnSuccess: true,
      onBeforeRequest: (req) => req.setHeader("Authorization", `Bearer ${this.token}`),
      onShouldRetry: (err) => navigator.onLine && RETRY_STATUSES.has(status(err)),
      onProgress: (sent) => this.set("uploading", { bytesSent: sent }),
      onSuccess: () => this.set("done", { bytesSent: file.size, fileId: idOf(this.tus.url) }),
      onError: (err) => this.failed(err),
    });
  }

  async start() {
    const previous = await this.tus.findPreviousUploads();
    if (previous.length) {
      // The newest first: an older entry may point at an upload that has expired since.
      previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
      this.tus.resumeFromPreviousUpload(previous[0]);
      this.resumed = true;
    }
    this.set("uploading");
    this.tus.start();
  }

  pause() {
    this.tus.abort();
    this.set("paused");
  }

  resume() {
    this.set("uploading", { error: null });
    this.tus.start();
  }

  failed(err) {
    if (!navigator.onLine) {
      // Resumed by the page when the browser is back online.
      this.set("offline");
      return;
    }
    this.set("failed", { error: describe(err) });
  }

  set(state, changes = {}) {
    Object.assign(this, changes, { state });
    this.onChange(this);
  }
}

function status(err) {
  return err.originalResponse ? err.originalResponse.getStatus() : 0;
}

function idOf(url) {
  return new URL(url).pathname.split("/").filter(Boolean).pop();
}

/** The server's problem+json detail, else a plain reason. */
function describe(err) {
  const response = err.originalResponse;
  if (!response) return "The connection to the server failed.";
  try {
    const problem = JSON.parse(response.getBody());
    if (problem && problem.detail) return problem.detail;
  } catch {
    // Not JSON: fall through to the status.
  }
  return `The server answered ${response.getStatus()}.`;
}
