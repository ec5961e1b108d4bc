// tus-js-client driven from filegate's e2e tests: one JSON argument in, one JSON line out.
//
//   node client.mjs '{"endpoint": "http://127.0.0.1:8000/v1/tus/", "key": "fgk_...",
//                     "file": "/tmp/a.txt", "mode": "chunked", "chunkSize": 65536,
//                     "metadata": {"filename": "a.txt", "filetype": "text/plain"}}'
//
// Optional: "abortAt" (fraction of the file after which abort-then-resume stops, default 0.3),
// "parallelUploads" (default 3), "retryDelays" (default null, see RETRY_DELAYS).
// Prints {"ok": true, "url": ..., "resumedFrom": ..., "requests": [...]} and exits 0, or
// {"ok": false, "error": ...} and exits 1. "requests" lists every response the client saw.
import fs from 'node:fs'
import { PassThrough } from 'node:stream'
import * as tus from 'tus-js-client'

// No retries by default. The server is local, so a failed request is the server's answer, not
// a network blip; and on a retry tus-js-client HEADs the upload and, if that fails with a 4xx,
// silently creates a fresh upload and sends everything again, which would pass a checksum test
// while hiding a lost upload or a wrong offset.
const RETRY_DELAYS = null
const TUS_VERSION = '1.0.0'

const MODES = {
  chunked: (args, log) => upload(fs.readFileSync(args.file), options(args, log)),
  'with-creation': (args, log) =>
    upload(fs.readFileSync(args.file), { ...options(args, log), uploadDataDuringCreation: true }),
  'deferred-stream': (args, log) =>
    upload(plainStream(args.file), { ...options(args, log), uploadLengthDeferred: true }),
  'abort-then-resume': abortThenResume,
  parallel: (args, log) =>
    upload(fs.readFileSync(args.file), {
      ...options(args, log),
      parallelUploads: args.parallelUploads ?? 3,
    }),
  terminate,
}

function options(args, log) {
  return {
    endpoint: args.endpoint,
    headers: { Authorization: `Bearer ${args.key}` },
    metadata: args.metadata ?? {},
    chunkSize: args.chunkSize ?? Number.POSITIVE_INFINITY,
    retryDelays: args.retryDelays ?? RETRY_DELAYS,
    onAfterResponse: (req, res) => {
      log.push({
        method: req.getMethod(),
        url: req.getURL(),
        status: res.getStatus(),
        concat: req.getHeader('Upload-Concat') ?? null,
        length: numberOrNull(req.getHeader('Upload-Length')),
        offset: numberOrNull(res.getHeader('Upload-Offset')),
      })
    },
  }
}

// tus-js-client 4.3.1 reads an fs.ReadStream that has a path by path, sized by stat(); with
// uploadLengthDeferred that reader claims a full chunkSize for the last chunk, so the PATCH's
// Content-Length is never met and the upload stalls. Piping makes it a plain stream, the case
// deferred length is for. Its length must not be a multiple of chunkSize (tus-js-client#779).
function plainStream(path) {
  return fs.createReadStream(path).pipe(new PassThrough())
}

function numberOrNull(header) {
  return header == null ? null : Number.parseInt(header, 10)
}

function upload(input, opts) {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(input, {
      ...opts,
      onSuccess: () => resolve({ url: up.url }),
      onError: reject,
    })
    up.start()
  })
}

// Runs until a PATCH response reports `stopAt` bytes or more, then aborts between requests,
// so the server has settled: its offset is exactly the last one acknowledged.
function uploadUntil(input, opts, stopAt) {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(input, {
      ...opts,
      onChunkComplete: (_chunk, accepted) => {
        if (accepted >= stopAt) {
          up.abort(false).then(() => resolve({ url: up.url, acknowledged: accepted }), reject)
        }
      },
      onSuccess: () => reject(new Error(`the upload finished before ${stopAt} bytes`)),
      onError: reject,
    })
    up.start()
  })
}

async function abortThenResume(args, log) {
  const data = fs.readFileSync(args.file)
  const stopAt = Math.ceil(data.length * (args.abortAt ?? 0.3))
  const first = await uploadUntil(data, options(args, log), stopAt)
  const resumedFrom = await headOffset(first.url, args.key)
  // No endpoint: if the upload cannot be resumed, fail rather than quietly start a new one.
  const resumed = await upload(data, { ...options(args, log), endpoint: null, uploadUrl: first.url })
  return { ...resumed, abortedUrl: first.url, acknowledged: first.acknowledged, resumedFrom }
}

async function terminate(args, log) {
  const first = await uploadUntil(fs.readFileSync(args.file), options(args, log), 1)
  const offsetBeforeTerminate = await headOffset(first.url, args.key)
  const { headers, retryDelays, onAfterResponse } = options(args, log)
  await tus.Upload.terminate(first.url, { headers, retryDelays, onAfterResponse })
  return { url: first.url, offsetBeforeTerminate }
}

async function headOffset(url, key) {
  const res = await fetch(url, {
    method: 'HEAD',
    headers: { Authorization: `Bearer ${key}`, 'Tus-Resumable': TUS_VERSION },
  })
  const offset = numberOrNull(res.headers.get('upload-offset'))
  if (res.status !== 200 || offset == null) {
    throw new Error(`HEAD ${url} answered ${res.status} with Upload-Offset ${offset}`)
  }
  return offset
}

async function main() {
  const log = []
  try {
    const args = JSON.parse(process.argv[2] ?? 'null')
    const mode = MODES[args?.mode]
    if (mode === undefined) {
      throw new Error(`mode must be one of ${Object.keys(MODES).join(', ')}`)
    }
    const result = await mode(args, log)
    console.log(JSON.stringify({ ok: true, resumedFrom: null, ...result, requests: log }))
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: String(err?.stack ?? err), requests: log }))
    process.exitCode = 1
  }
}

await main()
