// The console's bulk upload queue, as pure logic (no DOM, no XHR): many files sent two at a
// time, each one request of the ordinary upload endpoint, with per-file and overall progress,
// retries with backoff for what may pass on a second try, and a summary in the API's words.
// The page gives it `send` (an XHR in bulk-upload.js); tests/unit/test_upload_queue.py runs it
// under node with a fake one.
//
// What is retried: a network error (status 0), 408, 429, 502, 503 and 504, after the answer's
// Retry-After when it has one, otherwise after a doubling delay with jitter. Any other 4xx is
// the API refusing the file (415 not an image, 413 too large, 422 corrupt...): never retried, the
// summary names it with the API's message. A 500 is not retried either (the same bytes would
// meet the same bug).

// Two in flight: on the Procfile's two workers, 200 photos of 2 MB went faster per photo with 2
// than with 3 (1,450 against 1,720 ms) and kept the workers' extra RSS under 300 MB (256 MB;
// 3 reached 351 MB, single uploads at 3 alike): bench/results/console-bulk-2026-11-24.md.
export const CONCURRENCY = 2;
export const MAX_ATTEMPTS = 4;
export const BASE_DELAY_MS = 1000;
export const MAX_DELAY_MS = 30000;
const RETRYABLE = new Set([0, 408, 429, 502, 503, 504]);
// A file the browser gives no type for (some systems, some folders) is judged by its name.
const IMAGE_NAME = /\.(jpe?g|jfif|png|gif|webp|avif|heic|heif|svg|tiff?|bmp)$/i;
// Files a folder carries that nobody means to upload (the queue skips them without a word).
const HIDDEN_NAME = /^(\.|thumbs\.db$|desktop\.ini$)/i;

export function isImageFile(file) {
  if (file.type) return file.type.startsWith('image/');
  return IMAGE_NAME.test(file.name);
}

export function isHiddenFile(file) {
  return HIDDEN_NAME.test(file.name);
}

export function isRetryable(status) {
  return RETRYABLE.has(status);
}

// Milliseconds to wait before the next try: Retry-After (seconds, or an HTTP date) when the
// server said, never less than it; otherwise BASE_DELAY_MS doubled per failed try, capped, with
// up to half of it again at random so that many files do not come back at the same instant.
export function retryDelay(attempt, retryAfter = null, now = Date.now(), random = Math.random) {
  if (retryAfter !== null && retryAfter !== undefined && String(retryAfter).trim() !== '') {
    const text = String(retryAfter).trim();
    const seconds = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
    if (Number.isFinite(seconds)) return Math.min(Math.max(seconds, 0), MAX_DELAY_MS * 4);
  }
  const base = Math.min(BASE_DELAY_MS * 2 ** Math.max(attempt - 1, 0), MAX_DELAY_MS);
  return Math.round(base + base * 0.5 * random());
}

// The API's refusal as a sentence with its code: "The file is not an image. (unsupported_image)".
function refusalOf(answer) {
  const error = answer.body && answer.body.error;
  if (error && error.message) return {code: error.code || 'error', message: error.message};
  if (answer.status === 0) return {code: 'network', message: 'The server could not be reached.'};
  return {code: 'error', message: `The request failed (HTTP ${answer.status}).`};
}

// One file's state: waiting, sending, retrying (waiting to try again), stored (201), deduped
// (200: the same image was already there), refused (the API said no), failed (gave up on
// errors that may pass), skipped (not an image: never sent), cancelled.
export const FINISHED = new Set(['stored', 'deduped', 'refused', 'failed', 'skipped', 'cancelled']);

export class UploadQueue {
  // send(file, onProgress(fraction), abort) → Promise of {status, body, retryAfter}; rejects
  // (or answers status 0) on a network error. `abort` is an object whose `onabort` the sender
  // sets and the queue calls on cancel. `sleep(ms, abort)` waits (resolves early when aborted).
  constructor({send, concurrency = CONCURRENCY, maxAttempts = MAX_ATTEMPTS, sleep = defaultSleep,
    onChange = () => {}, random = Math.random, now = () => Date.now()} = {}) {
    this.send = send;
    this.concurrency = Math.max(1, concurrency);
    this.maxAttempts = maxAttempts;
    this.sleep = sleep;
    this.onChange = onChange;
    this.random = random;
    this.now = now;
    this.items = [];
    this.cancelled = false;
    this.running = null;
  }

  // Queue files; what is not an image is marked skipped here and never sent.
  add(files) {
    const added = [];
    for (const file of files) {
      if (isHiddenFile(file)) continue;
      const item = {file, name: file.relativePath || file.webkitRelativePath || file.name,
        bytes: file.size || 0, state: isImageFile(file) ? 'waiting' : 'skipped', progress: 0,
        attempts: 0, maxAttempts: this.maxAttempts, status: null, body: null, refusal: null, nextTryAt: null, abort: null};
      if (item.state === 'skipped') {
        item.refusal = {code: 'not_an_image', message: `Not an image (${file.type || 'unknown type'}); not sent.`};
      }
      this.items.push(item);
      added.push(item);
      this.changed(item);
    }
    return added;
  }

  // Send every waiting file, at most `concurrency` at a time; resolves when none is left.
  start() {
    if (this.running) {  // files added during a run: the workers may have ended by now
      return this.running.then(() => (!this.cancelled && this.items.some((one) => one.state === 'waiting')
        ? this.start() : this.summary()));
    }
    this.cancelled = false;
    const workers = [];
    for (let n = 0; n < this.concurrency; n += 1) workers.push(this.work());
    this.running = Promise.all(workers).then(() => {
      this.running = null;
      this.changed(null);
      return this.summary();
    });
    return this.running;
  }

  // Stop: the files being sent are aborted, the waiting ones are not sent (all "cancelled").
  cancel() {
    this.cancelled = true;
    for (const item of this.items) {
      if (FINISHED.has(item.state)) continue;
      if (item.abort && item.abort.onabort) item.abort.onabort();
      item.state = 'cancelled';
      this.changed(item);
    }
  }

  // Put the failed and cancelled files back in the queue (refused ones stay refused) and send them.
  async retryFailed() {
    if (this.running) await this.running;  // after a cancel, the workers finish their last step
    for (const item of this.items) {
      if (item.state === 'failed' || item.state === 'cancelled') {
        Object.assign(item, {state: 'waiting', progress: 0, attempts: 0, refusal: null, nextTryAt: null});
        this.changed(item);
      }
    }
    return this.start();
  }

  async work() {
    for (;;) {
      if (this.cancelled) return;
      const item = this.items.find((one) => one.state === 'waiting');
      if (!item) return;
      item.state = 'sending';
      await this.attempt(item);
    }
  }

  async attempt(item) {
    for (;;) {
      item.attempts += 1;
      item.progress = 0;
      item.state = 'sending';
      item.abort = {onabort: null};
      this.changed(item);
      let answer;
      try {
        answer = await this.send(item.file, (fraction) => {
          if (item.state !== 'sending') return;
          item.progress = Math.min(Math.max(fraction, 0), 1);
          this.changed(item);
        }, item.abort);
      } catch {
        answer = {status: 0, body: null, retryAfter: null};
      }
      item.abort = null;
      if (item.state === 'cancelled') return;
      item.status = answer.status;
      item.body = answer.body;
      if (answer.status >= 200 && answer.status < 300) {
        item.state = answer.status === 200 ? 'deduped' : 'stored';
        item.progress = 1;
        this.changed(item);
        return;
      }
      item.refusal = refusalOf(answer);
      if (!isRetryable(answer.status) || item.attempts >= this.maxAttempts) {
        item.state = answer.status >= 400 && answer.status < 500 && !isRetryable(answer.status) ? 'refused' : 'failed';
        this.changed(item);
        return;
      }
      const wait = retryDelay(item.attempts, answer.retryAfter, this.now(), this.random);
      item.state = 'retrying';
      item.nextTryAt = this.now() + wait;
      this.changed(item);
      item.abort = {onabort: null};
      await this.sleep(wait, item.abort);
      item.abort = null;
      if (item.state === 'cancelled') return;
    }
  }

  changed(item) {
    this.onChange(item, this);
  }

  // The share of the queue's bytes done: finished files whole, the ones being sent by their
  // upload progress; skipped files do not count.
  overall() {
    const counted = this.items.filter((item) => item.state !== 'skipped');
    const total = counted.reduce((sum, item) => sum + Math.max(item.bytes, 1), 0);
    if (!total) return counted.length || this.items.length ? 1 : 0;
    const done = counted.reduce((sum, item) => sum + Math.max(item.bytes, 1)
      * (FINISHED.has(item.state) ? 1 : item.progress), 0);
    return done / total;
  }

  summary() {
    return summarize(this.items);
  }
}

function defaultSleep(ms, abort) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (abort) {
      abort.onabort = () => {
        clearTimeout(timer);
        resolve();
      };
    }
  });
}

// What happened to every file: counts, one sentence, and a line per file not stored.
export function summarize(items) {
  const count = (state) => items.filter((item) => item.state === state).length;
  const counts = {stored: count('stored'), deduped: count('deduped'), refused: count('refused'),
    failed: count('failed'), skipped: count('skipped'), cancelled: count('cancelled'),
    pending: items.filter((item) => !FINISHED.has(item.state)).length, total: items.length};
  const parts = [`${counts.stored} stored`];
  if (counts.deduped) parts.push(`${counts.deduped} already there`);
  if (counts.refused) parts.push(`${counts.refused} refused`);
  if (counts.failed) parts.push(`${counts.failed} failed`);
  if (counts.skipped) parts.push(`${counts.skipped} skipped (not images)`);
  if (counts.cancelled) parts.push(`${counts.cancelled} cancelled`);
  if (counts.pending) parts.push(`${counts.pending} to go`);
  const text = `${parts.join(', ')} of ${counts.total} file(s).`;
  const problems = items.filter((item) => ['refused', 'failed', 'skipped'].includes(item.state))
    .map((item) => ({name: item.name, state: item.state, code: item.refusal ? item.refusal.code : null,
      message: item.refusal ? item.refusal.message : '',
      line: `${item.name}: ${item.state === 'skipped' ? 'skipped' : item.state}: `
        + `${item.refusal ? item.refusal.message : ''}`
        + `${item.refusal && item.state !== 'skipped' ? ` (${item.refusal.code})` : ''}`}));
  return {counts, text, problems};
}

// What a file's row says: "37 %", "uploaded", "retrying in 3 s (HTTP 503; ...)", "Refused: ...".
export function itemText(item, now = Date.now()) {
  switch (item.state) {
    case 'waiting': return 'waiting';
    case 'sending': return item.progress < 1 ? `${Math.round(item.progress * 100)} %` : 'processing…';
    case 'retrying': return `retrying in ${Math.max(1, Math.ceil(((item.nextTryAt || now) - now) / 1000))} s`
      + ` (${item.status ? `HTTP ${item.status}` : 'network error'}; try ${item.attempts + 1} of ${item.maxAttempts || MAX_ATTEMPTS})`;
    case 'stored': return 'uploaded';
    case 'deduped': return 'uploaded: the same image was already there';
    case 'refused': return `Refused: ${item.refusal.message}`;
    case 'failed': return `Failed: ${item.refusal.message}`;
    case 'skipped': return `Skipped: ${item.refusal.message}`;
    case 'cancelled': return 'cancelled';
    default: return item.state;
  }
}
