// Uploads (anyone logged in): their own files, public or private, as the library shows its
// images: a grid of tiles (tilegrid.js), a click (or Enter) opening one upload's details in the
// panel beside it (panel.js; the whole screen on a phone): the larger picture, a link to open or
// copy, the editor, its versions, delete.
import {api, countOf, el, formatBytes, formatDate, newest, pageMessage, sendForm, show} from './api.js';
import {confirmAction} from './confirm.js';
import {bulkPanel, dropTarget} from './bulk-upload.js';
import {gridSizes, picture, showImage} from './picture.js';
import {imageIn, openEditor} from './editor.js';
import {TileGrid} from './tilegrid.js';
import {DetailsPanel, lazySection} from './panel.js';
import {versionsPanel} from './versions.js';

const list = document.getElementById('uploads');
const listStatus = document.getElementById('list-status');
const more = document.getElementById('more');
const form = document.getElementById('upload-form');
const uploadList = document.getElementById('upload-list');
// A .media-grid cell's picture and the panel's (as the library's).
const CELL = gridSizes('(max-width: 480px) calc(50vw - 2.5rem), 13rem');
const PANEL = '(max-width: 760px) calc(100vw - 2rem), 21rem';

let after = null;  // the next page's cursor (the API's `next`)
let shown = 0;
let total = 0;
let totalExact = true;

function describeCount() {
  listStatus.textContent = total ? `${shown} of ${countOf({total, total_exact: totalExact})} upload(s).`
    : 'No uploads yet.';
}

async function copy(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    show(status, 'Link copied.', 'ok');
  } catch {
    // No clipboard permission (plain http, an old browser): show the link to copy by hand.
    show(status, `Copy this link: ${text}`, 'warning');
  }
}

// Nothing to do on many uploads at once here: one selected at a time, the one shown.
const picks = new TileGrid(list, {
  multiple: false,
  onChange() {
    for (const node of picks.tiles()) node.setAttribute('aria-selected', String(picks.isSelected(node)));
  },
  onEscape(event) {
    if (!details.for) return;
    event.preventDefault();
    details.close();
  },
});

function badge(file) {
  const privateFile = file.visibility === 'private';
  return el('span', {class: `badge ${privateFile ? 'private' : 'public'}`}, privateFile ? 'private' : 'public');
}

// An upload's tile: its picture (decorative: the name under it says which), name, whether
// it is public, size.
function tile(file) {
  const node = picks.tile(file.id, file.filename, [
    picture(file, CELL, {alt: '', width: '160', height: '160'}),
    el('p', {class: 'filename'}, file.filename),
    el('p', {class: 'size'}, badge(file), ` ${formatBytes(file.bytes)}`),
  ], (byKey) => details.open(file, node, {focus: byKey ? 'title' : null}));
  node.upload = file;
  return node;
}

function drawDetails(file, node) {
  const status = el('p', {class: 'message', role: 'status', 'aria-live': 'polite', hidden: true});
  const link = () => new URL(file.url, location.origin).href;  // an edit gives a new one
  const open = el('a', {href: link(), target: '_blank', rel: 'noopener', class: 'button secondary',
    'aria-label': `Open ${file.filename}`}, 'Open');
  const large = picture(file, PANEL, {alt: '', width: '336', height: '336', loading: 'eager'});
  const sizeText = el('p', {class: 'muted size-line'});
  const describe = () => {
    sizeText.textContent = `${file.width}×${file.height} · ${formatBytes(file.bytes)} · ${formatDate(file.uploaded_at)}`;
  };
  describe();
  // An edit or a restore gives new URLs (a new version): here and on the tile.
  function refresh(answer) {
    Object.assign(file, imageIn(answer, file.id));
    showImage(large, file);
    const onTile = node.querySelector('picture');
    if (onTile) showImage(onTile, file);
    open.href = link();
    describe();
  }
  return [
    details.head(file.filename),
    large,
    sizeText,
    el('p', {}, badge(file), file.visibility === 'private' ? ' Its link is signed and expires.' : ' Anyone with its link opens it.'),
    el('div', {class: 'row small'},
      open,
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Copy link of ${file.filename}`,
        onclick: () => copy(link(), status)}, 'Copy link'),
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Edit ${file.filename}`, onclick: () => openEditor({
        image: file, base: `/api/uploads/${file.id}`, onSaved: refresh})}, 'Edit'),
      el('button', {type: 'button', class: 'danger', 'aria-label': `Delete ${file.filename}`,
        onclick: () => remove(file, node, status)}, 'Delete')),
    status,
    el('div', {class: 'panel-sections'},
      lazySection('Versions', `Versions of ${file.filename}`, async () => versionsPanel({
        base: `/api/uploads/${file.id}`, name: file.filename, onRestored: refresh}))),
  ];
}

const details = new DetailsPanel({
  panel: document.getElementById('media-panel'),
  body: document.getElementById('uploads-body'),
  grid: picks,
  draw: drawDetails,
});

async function remove(file, node, status) {
  if (!await confirmAction({title: `Delete ${file.filename}?`, text: 'Its links stop working.', yes: 'Delete'})) return;
  try {
    await api('DELETE', `/api/uploads/${file.id}`);
  } catch (error) {
    show(status, error.message, 'error');
    return;
  }
  // The focus goes on to the next tile (else the one before), as in the library.
  const all = picks.tiles();
  const nextOne = all[all.indexOf(node) + 1] || all[all.indexOf(node) - 1] || null;
  details.close({focus: false});
  node.remove();
  picks.forget(node);
  shown -= 1;
  total -= 1;
  describeCount();
  // The focus goes on to the next tile; the last one gone, to the line saying there is none
  // (not to the page's start, with the Delete button it was on).
  if (nextOne) {
    picks.current(nextOne);
  } else {
    listStatus.tabIndex = -1;
    listStatus.focus();
  }
  pageMessage(`${file.filename} deleted.`, 'ok');
}

// Two reloads close together (two runs ending, a retry) would append both answers: only the
// newest is drawn.
const askingList = newest();

async function load(reset) {
  const current = askingList();
  try {
    const filters = new URLSearchParams({per_page: 48});
    if (reset) after = null;
    if (after) filters.set('after', after);
    const answer = await api('GET', `/api/uploads?${filters}`);
    if (!current()) return;
    const made = answer.items.map(tile);
    if (reset) {
      // Replaced in one step once the answer is here; the details stay open on an upload the
      // new list still has (after an upload finished), drawn from its new answer.
      shown = 0;
      const showing = details.for && details.for.dataset.id;
      list.replaceChildren(...made);
      const again = showing && made.find((node) => node.dataset.id === showing);
      if (again) {
        picks.only(again);
        details.open(again.upload, again, {focus: null});
      } else {
        details.close({focus: false});
      }
    } else {
      list.append(...made);
    }
    picks.drawn();
    shown += answer.items.length;
    after = answer.next;
    total = answer.total;
    totalExact = answer.total_exact !== false;
    more.hidden = !answer.next;
    describeCount();
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
// "Show more" adds the next page and moves the focus to its first tile (as the library's).
more.addEventListener('click', async () => {
  const before = picks.tiles().length;
  await load(false);
  const first = picks.tiles()[before];
  if (first && (document.activeElement === more || document.activeElement === document.body)) picks.current(first);
});

load(true);
