// Images imported from URLs (the library's, a product's): a pasted list, one URL a line, each
// sent alone (POST …/import-url: the server fetches it through its SSRF guard) so a refused URL
// names itself and the others still go in. Each row says what became of its URL in words:
// stored, already there, or refused and why, with the setting an admin would change when a
// setting is what refused it.
import {answer, el} from './api.js';

// The setting behind each refusal an admin can lift; the API's message names it for a port and
// a non-public address (avenue/urlfetch.py), the others get it here.
const SETTINGS = {
  bad_url: ['AVENUE_URL_IMPORT_PORTS', /^Port \d+ /],
  forbidden_address: ['AVENUE_URL_IMPORT_ALLOW_NETWORKS'],
  host_not_allowed: ['AVENUE_URL_IMPORT_HOSTS'],
  url_import_disabled: ['AVENUE_URL_IMPORT'],
  too_large: ['AVENUE_MAX_UPLOAD_BYTES'],
  timeout: ['AVENUE_URL_IMPORT_SECONDS'],
  too_many_redirects: ['AVENUE_URL_IMPORT_MAX_REDIRECTS'],
};

export function refusal(error) {
  const [setting, when] = SETTINGS[error.code] || [];
  const applies = setting && (!when || when.test(error.message)) && !error.message.includes(setting);
  return applies ? `${error.message} (an admin can change ${setting}.)` : error.message;
}

// The URLs of a pasted list: one a line, blank lines skipped, each once.
export function urlsOf(text) {
  return [...new Set(text.split(/\r?\n/).map((line) => line.trim()).filter(Boolean))];
}

// `button` (aria-expanded, aria-controls) shows and hides `form`, which starts hidden: the
// focus stays on the button, as the console's other folds do (shell.js).
export function foldBehind(button, form) {
  button.addEventListener('click', () => {
    const opening = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(opening));
    form.hidden = !opening;
  });
}

// `form` holds a textarea (name "urls") and a submit button; `list` gets a row per URL; `status`
// (a live region) says where the run is and how it ended. `path` is the import-url endpoint;
// `fields()` what else each request sends (the library's alt text, folder and tags);
// `words(status, data)` what a 2xx answer means ("stored", "already there"); `onDone(stored)`
// after the last URL (to draw the page's list again).
export function urlImport({form, list, status, path, words, fields = () => ({}), onDone = () => {}}) {
  const box = form.elements.urls;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const urls = urlsOf(box.value);
    if (!urls.length) {
      status.textContent = 'Paste one or more image URLs, one a line.';
      box.focus();
      return;
    }
    list.replaceChildren();
    const extra = fields();  // as they were when the run began
    const counts = {done: 0, refused: 0};
    for (const [at, url] of urls.entries()) {
      status.textContent = `Importing ${at + 1} of ${urls.length}…`;
      const said = el('span', {class: 'upload-status'}, 'fetching…');
      const row = el('li', {}, el('span', {class: 'upload-name'}, url), said);
      list.append(row);
      try {
        const {status: code, data} = await answer('POST', path(), {...extra, url});
        said.textContent = words(code, data);
        row.classList.add('ok');
        counts.done += 1;
      } catch (error) {
        said.textContent = `Refused: ${refusal(error)}`;
        row.classList.add('refused');
        counts.refused += 1;
      }
    }
    status.textContent = `Done: ${counts.done} of ${urls.length} imported`
      + `${counts.refused ? `, ${counts.refused} refused (each says why)` : ''}.`;
    if (!counts.refused) form.reset();
    onDone(counts.done);
  });
}
