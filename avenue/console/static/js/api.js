// The console's one way of calling the JSON API: the session cookie, the CSRF token on every
// state-changing call, and errors turned into sentences (never raw JSON) for the page.

let csrf = null;

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function csrfToken(refresh = false) {
  if (!csrf || refresh) {
    const response = await fetch('/api/auth/csrf', {credentials: 'same-origin', headers: {Accept: 'application/json'}});
    csrf = (await response.json()).csrf_token;
  }
  return csrf;
}

export function rememberCsrf(token) {
  csrf = token;
}

function errorFrom(status, data) {
  const error = data && data.error;
  if (error && error.message) return new ApiError(status, error.code || 'error', error.message, error);
  const words = {0: 'The server could not be reached. Check the connection and try again.',
                 502: 'The server is not answering right now; try again shortly.',
                 503: 'The server is busy or the database is down; try again shortly.'};
  return new ApiError(status, 'error', words[status] || `The request failed (HTTP ${status}).`);
}

let leaving = false;

export function loginAgain(status) {
  // A session that ended (logout elsewhere, a new password) sends the user back to log in,
  // once: the other requests in flight get their 401s too, and a second assign() would
  // abort the first navigation (the page then sat on a cancelled load for a moment).
  if (status === 401 && !leaving && !location.pathname.endsWith('/console/login')) {
    leaving = true;
    location.assign(`/console/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
}

// Answers can come back in another order than they were asked (a slow range, then a quick
// one): a screen that redraws on each choice draws only the newest. `const asking = newest();`
// once; `const current = asking();` before each request; after it, `if (!current()) return;`.
export function newest() {
  let asked = 0;
  return () => {
    const mine = ++asked;
    return () => mine === asked;
  };
}

export async function api(method, path, body) {
  return (await answer(method, path, body)).data;
}

// api() with the answer's status: {status, data}, where a 200 and a 201 say different things
// (an import from a URL that found its image already there, or stored it).
export async function answer(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = await csrfToken();
  const init = {method, headers, credentials: 'same-origin'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw errorFrom(0, null);
  }
  if (response.status === 204) return {status: 204, data: null};
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    loginAgain(response.status);
    throw errorFrom(response.status, data);
  }
  return {status: response.status, data};
}

// POST (or PUT: a replace) one multipart form by XMLHttpRequest, so the upload's progress can
// be shown: the CSRF token, upload progress events, and a 401 back to the login form. Every HTTP
// answer resolves {status, body, retryAfter} (the caller decides what a status means); a network
// error, a timeout or an abort (`abort.onabort`, set here, cancels the request) answers status 0.
export function sendForm(path, form, onProgress, abort, method = 'POST') {
  return csrfToken().then((token) => new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      loginAgain(xhr.status);  // a session that ended: back to the login form, as every API call does
      resolve({status: xhr.status, body: xhr.response, retryAfter: xhr.getResponseHeader('Retry-After')});
    });
    const lost = () => resolve({status: 0, body: null, retryAfter: null});
    xhr.addEventListener('error', lost);
    xhr.addEventListener('abort', lost);
    xhr.addEventListener('timeout', lost);
    if (abort) abort.onabort = () => xhr.abort();
    xhr.send(form);
  }));
}

// sendForm for one upload on a page: resolves the answer's JSON on a 2xx (progress then shows
// the end), rejects with an ApiError (its sentence) on any other answer or a lost connection.
export async function upload(path, form, onProgress, method = 'POST') {
  const {status, body} = await sendForm(path, form, onProgress, null, method);
  if (status < 200 || status >= 300) throw errorFrom(status, status ? body : null);
  onProgress(1);
  return body;
}

// A product's price in the shop's currency (AVENUE_CURRENCY, on the page's <html>): 1999 is
// "€1,999.00" for EUR; a currency the browser does not know shows the number and its code.
export function formatPrice(value) {
  if (value === null || value === undefined || value === '') return '';
  const currency = document.documentElement.dataset.currency || 'EUR';
  try {
    return new Intl.NumberFormat(document.documentElement.lang || undefined,
                                 {style: 'currency', currency}).format(value);
  } catch {
    return `${value} ${currency}`;
  }
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return 'unknown';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

// A list's total as people read it: "1,000+" when the API stopped counting (total_exact false).
export function countOf(list) {
  return list.total_exact === false ? `${list.total.toLocaleString('en')}+` : String(list.total);
}

export function formatDate(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'short'});
}

// Build an element: el('a', {href: '/x', class: 'y'}, 'text', child...). Text is never parsed
// as HTML, so names and filenames from the API cannot inject markup.
// A media URL the console loads itself (a thumbnail, a grid's picture, a preview), with the
// marker the media route recognises (via=console, docs/operations.md): served as any other,
// counted in no delivery numbers, so browsing the console is not a visitor's fetch. Only on
// what the page loads, never on a URL a user copies or follows.
const CONSOLE_MARKER = 'via=console';

export function consoleMedia(url) {
  if (!url) return url;
  return `${url}${url.includes('?') ? '&' : '?'}${CONSOLE_MARKER}`;
}

// The same for each candidate of a srcset ("<url> 320w, <url> 640w"; a URL holds no space).
export function consoleSrcset(srcset) {
  if (!srcset) return srcset;
  return srcset.split(', ').map((candidate) => {
    const [url, ...descriptor] = candidate.trim().split(' ');
    return [consoleMedia(url), ...descriptor].join(' ');
  }).join(', ');
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function show(node, text, kind = '') {
  node.textContent = text;
  node.hidden = !text;
  node.className = `message ${kind}`.trim();
}

export function pageMessage(text, kind = 'error') {
  show(document.getElementById('page-message'), text, kind);
}

// One row per file in an upload list: its name, a progress bar and, at the end, what happened.
export function progressRow(list, name) {
  const bar = el('progress', {max: '100', value: '0', 'aria-label': `Uploading ${name}`});
  const status = el('span', {class: 'upload-status'}, 'waiting…');
  const row = el('li', {}, el('span', {class: 'upload-name'}, name), bar, status);
  list.append(row);
  return {
    progress(fraction) {
      bar.value = Math.round(fraction * 100);
      status.textContent = fraction < 1 ? `${Math.round(fraction * 100)} %` : 'processing…';
    },
    done(text) {
      bar.value = 100;
      row.classList.add('ok');
      status.textContent = text;
    },
    failed(text) {
      row.classList.add('refused');
      bar.remove();
      status.textContent = text;
      status.setAttribute('role', 'alert');
    },
  };
}

// Upload files one request each, so a refused file names itself and the others still go in.
export async function uploadEach(files, list, send) {
  for (const file of files) {
    const row = progressRow(list, file.name);
    try {
      await send(file, (fraction) => row.progress(fraction));
      row.done('uploaded');
    } catch (error) {
      row.failed(`Refused: ${error.message}`);
    }
  }
}
