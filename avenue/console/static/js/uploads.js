// Uploads (anyone logged in): their own files, public or private, a link to copy, delete.
import {api, countOf, el, formatBytes, formatDate, newest, pageMessage, sendForm, show} from './api.js';
import {bulkPanel, dropTarget} from './bulk-upload.js';
import {gridSizes, picture, showImage} from './picture.js';
import {imageIn, openEditor} from './editor.js';

const list = document.getElementById('uploads');
const listStatus = document.getElementById('list-status');
const more = document.getElementById('more');
const form = document.getElementById('upload-form');
const uploadList = document.getElementById('upload-list');
// A .media-grid cell's picture (as the library's).
const CELL = gridSizes('(max-width: 480px) calc(100vw - 5rem), 26rem');

let after = null;  // the next page's cursor (the API's `next`)
let shown = 0;

async function copy(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    show(status, 'Link copied.', 'ok');
  } catch {
    // No clipboard permission (plain http, an old browser): show the link to copy by hand.
    show(status, `Copy this link: ${text}`, 'warning');
  }
}

function item(file) {
  const status = el('p', {class: 'message', role: 'status', 'aria-live': 'polite', hidden: true});
  const privateFile = file.visibility === 'private';
  const link = () => new URL(file.url, location.origin).href;  // an edit gives a new one
  const open = el('a', {href: link(), target: '_blank', rel: 'noopener', class: 'button secondary',
    'aria-label': `Open ${file.filename}`}, 'Open');
  const shown = picture(file, CELL, {width: '200', height: '200'});
  const node = el('li', {class: 'media-card', dataset: {id: file.id}},
    shown,
    el('p', {class: 'filename'}, file.filename),
    el('p', {}, el('span', {class: `badge ${privateFile ? 'private' : 'public'}`}, privateFile ? 'private' : 'public'),
      ` ${formatBytes(file.bytes)} · ${formatDate(file.uploaded_at)}`),
    privateFile ? el('p', {class: 'muted'}, 'Its link is signed and expires.') : null,
    el('div', {class: 'row small'},
      open,
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Copy link of ${file.filename}`,
        onclick: () => copy(link(), status)}, 'Copy link'),
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Edit ${file.filename}`, onclick: () => openEditor({
        image: file, base: `/api/uploads/${file.id}`,
        onSaved: (answer) => {
          showImage(shown, Object.assign(file, imageIn(answer, file.id)));
          open.href = link();
        }})}, 'Edit'),
      el('button', {type: 'button', class: 'danger', 'aria-label': `Delete ${file.filename}`, onclick: async () => {
        if (!window.confirm(`Delete ${file.filename}? Its links stop working.`)) return;
        try {
          await api('DELETE', `/api/uploads/${file.id}`);
          node.remove();
          pageMessage(`${file.filename} deleted.`, 'ok');
        } catch (error) {
          show(status, error.message, 'error');
        }
      }}, 'Delete')),
    status);
  return node;
}

// Two reloads close together (two runs ending, a retry) would append both answers: only the
// newest is drawn.
const askingList = newest();

async function load(reset) {
  const current = askingList();
  if (reset) {
    after = null;
    shown = 0;
    list.replaceChildren();
  }
  try {
    const filters = new URLSearchParams({per_page: 48});
    if (after) filters.set('after', after);
    const answer = await api('GET', `/api/uploads?${filters}`);
    if (!current()) return;
    list.append(...answer.items.map(item));
    shown += answer.items.length;
    after = answer.next;
    more.hidden = !answer.next;
    listStatus.textContent = answer.total ? `${shown} of ${countOf(answer)} upload(s).` : 'No uploads yet.';
  } catch (error) {
    if (current()) show(listStatus, error.message, 'error');
  }
}

// Many files or a folder at once: a queue of single uploads (bulk-upload.js).
const bulk = bulkPanel(uploadList, {
  send(file, progress, abort) {
    const body = new FormData();
    body.append('file', file);
    body.append('visibility', form.visibility.value);
    return sendForm('/api/uploads', body, progress, abort);
  },
  onDone: () => load(true),
});
form.addEventListener('submit', (event) => {
  event.preventDefault();
  const files = [...form.file.files, ...form.directory.files];
  if (!files.length) {
    pageMessage('Choose images or a folder to upload.');
    return;
  }
  form.file.value = '';
  form.directory.value = '';
  bulk.upload(files);
});
dropTarget(document.getElementById('dropzone'), (files) => bulk.upload(files));
more.addEventListener('click', () => load(false));

load(true);
