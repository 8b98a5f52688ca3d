// Media library (editors, admins): a grid of thumbnails (name and size under each), search by
// name, folder and tag, upload with progress; a click (or Enter) opens an image's details in a
// panel beside the grid (the whole screen on a phone): the larger picture with its focal point
// (click it, or move its marker by keyboard), alt text, folder and tags, its readable name,
// named crops, versions, where it is used, look-alikes, deliveries, the editor, replacing its
// file in place, and deletion that shows the pages in the way before forcing it. Many at once:
// select (Ctrl/Cmd-click, Shift-click for a range, the keyboard, or every image the filter
// matches), then move, tag, untag, delete or restore from the trash.
import {ApiError, api, countOf, el, formatBytes, formatDate, newest, pageMessage, sendForm, show, upload} from './api.js';
import {bulkPanel, dropTarget} from './bulk-upload.js';
import {gridSizes, picture, showImage} from './picture.js';
import {nearList, showExactGroups, showGroups, warnNear} from './near.js';
import {deliveryChart} from './cardchart.js';
import {imageIn, openEditor} from './editor.js';
import {versionsPanel} from './versions.js';
import {TileGrid} from './tilegrid.js';
import {missingAlt} from './alttext.js';
import {DetailsPanel, lazySection, once} from './panel.js';
import {focalPicker} from './focal.js';
import {runBulk} from './bulk-actions.js';
import {confirmAction} from './confirm.js';
import {foldBehind, urlImport} from './urlimport.js';

const grid = document.getElementById('media-grid');
const listStatus = document.getElementById('list-status');
const more = document.getElementById('more');
const searchForm = document.getElementById('search-form');
const uploadForm = document.getElementById('upload-form');
const uploadList = document.getElementById('upload-list');
// A .media-grid cell's picture: about half the screen on a phone (two columns), at most about
// 13rem on a wide one.
const CELL = gridSizes('(max-width: 480px) calc(50vw - 2.5rem), 13rem');

let query = '';
let folder = '';
let tag = '';
let color = '';  // "#rrggbb": images mostly close to it
let sort = 'newest';  // or oldest, name, size (largest first)
let unused = '';  // days: images no page or product uses, older than that
let trashView = false;  // the library's trash instead of the library
let after = null;  // the next page's cursor (the API's `next`)
let shown = 0;
let total = 0;
let totalExact = true;  // false: the API stopped counting at its limit ("1,000+")

function describeFilter() {
  return [query && `matching “${query}”`, folder && `in ${folder}`, tag && `tagged “${tag}”`,
    color && `mostly close to ${color}`, unused !== '' && `unused for ${unused} day(s) or more`]
    .filter(Boolean).join(', ');
}

function describeCount() {
  const filter = describeFilter();
  if (trashView) {
    listStatus.textContent = total ? `${shown} of ${countOf({total, total_exact: totalExact})} image(s) in the trash.`
      : 'The trash is empty.';
    return;
  }
  listStatus.textContent = total
    ? `${shown} of ${countOf({total, total_exact: totalExact})} image(s)${filter ? ` ${filter}` : ''}.`
    : (filter ? `No image ${filter}.` : 'The library is empty.');
}

// --- the grid (tilegrid.js: a list box of tiles), selection and bulk actions ----------------
// (POST /api/builder/media/bulk). A click opens an image's details in the panel; the selection
// drives the bulk actions.

const bulkCount = document.getElementById('bulk-count');
const bulkSummary = document.getElementById('bulk-summary');
const bulkBar = document.getElementById('bulk-bar');
// The bar floats over the grid's bottom edge: a tile the focus moves to (Tab, the arrows)
// scrolls clear of it (console.css: the page's scroll-padding-bottom is the bar's height).
new ResizeObserver(() => document.documentElement.style.setProperty('--bulk-bar-height', `${bulkBar.offsetHeight}px`))
  .observe(bulkBar);
const selectAll = document.getElementById('select-all');

function describeSelection() {
  const count = picks.allMatching ? countOf({total, total_exact: totalExact}) : picks.count();
  bulkCount.textContent = picks.allMatching ? `All ${count} matching image(s) selected.`
    : (count ? `${count} image(s) selected.` : 'No image selected.');
  selectAll.textContent = `Select all ${countOf({total, total_exact: totalExact})} matching`;
  selectAll.hidden = trashView;
  // One image whose details are open: the panel acts on it, and the bar would cover the grid.
  bulkBar.hidden = !(picks.allMatching || picks.count() > 1 || (picks.count() === 1 && !details.for));
  for (const node of picks.tiles()) node.setAttribute('aria-selected', String(picks.isSelected(node)));
}

const picks = new TileGrid(grid, {
  onChange: describeSelection,
  onEscape(event) {  // on a tile: the details close
    if (!details.for) return;
    event.preventDefault();
    details.close();
  },
});

function currentFilter() {
  const filter = {};
  if (query) filter.q = query;
  if (folder) filter.folder = folder;
  if (tag) filter.tag = tag;
  if (color) filter.color = color;
  if (unused !== '') filter.unused = Number(unused);
  return filter;
}

// One bulk action on the selection (bulk-actions.js), then the list and the counts again.
async function bulkAction(action, extra, verb) {
  const fromBar = bulkBar.contains(document.activeElement);
  if (!(await runBulk(picks, {summary: bulkSummary, filter: currentFilter(), action, extra, verb}))) return;
  picks.clear();
  await load(true);
  loadFacets();
  // The bar hides with the selection, and the focus on its button with it: the focus goes to
  // the summary of what the action did, just above the grid (the page not scrolled: it stays
  // on the tiles), not to the page's start; Tab from there reaches the grid.
  if (fromBar && (document.activeElement === document.body || bulkBar.contains(document.activeElement))) {
    bulkSummary.tabIndex = -1;
    bulkSummary.focus({preventScroll: true});
  }
}

// The folder list and tag suggestions, with their counts (GET /api/builder/folders, /tags).
const askingFacets = newest();  // after several changes, the counts of the last one

async function loadFacets() {
  const current = askingFacets();
  try {
    const [folders, tags] = await Promise.all([api('GET', '/api/builder/folders'), api('GET', '/api/builder/tags')]);
    if (!current()) return;
    const select = searchForm.folder;
    select.replaceChildren(el('option', {value: ''}, 'All folders'),
      ...folders.folders.map((f) => el('option', {value: f.folder, selected: f.folder === folder}, `${f.folder} (${f.count})`)));
    document.getElementById('tag-list').replaceChildren(
      ...tags.tags.map((t) => el('option', {value: t.tag}, `${t.tag} (${t.count})`)));
  } catch (error) {
    if (current()) show(listStatus, error.message, 'error');
  }
}

function recount(change) {
  shown += change;
  total += change;
  describeCount();
}

function askForce(media, pages) {
  return confirmAction({title: 'Delete an image that pages use?', no: 'Keep it',
    yes: 'Delete and remove it from those pages',
    text: `${media.filename} is used on ${pages.length} page(s): ${pages.join(', ')}. `
      + 'Deleting it removes its blocks from those pages.'});
}

// "4000×3000 · 1.2 MB · date": what the details say about the picture (again after a replace).
function sizeLine(media) {
  return `${media.width}×${media.height} · ${formatBytes(media.bytes)} · ${formatDate(media.uploaded_at)}`;
}

// Under a tile: "1.2 MB · 4000×3000".
function tileLine(media) {
  return `${formatBytes(media.bytes)} · ${media.width}×${media.height}`;
}

// A library image's tile: its picture (the rendition that fits the cell, over its dominant
// colour), name and size. The picture is decorative here: the name says which image it is.
function card(media) {
  const shown = picture(media, CELL, {alt: '', width: '160', height: '160'});
  const node = picks.tile(media.id, media.filename, [
    shown,
    el('p', {class: 'filename'}, media.filename),
    el('p', {class: 'size'}, tileLine(media)),
  ], (byKey) => details.open(media, node, {focus: byKey ? 'title' : null}));
  node.media = media;
  return node;
}

// --- the details panel (beside the grid; the whole screen on a phone) ------------------------

// The panel's picture: the whole screen's width on a phone, about 21rem beside the grid (not
// sizes="auto": the panel is drawn at once, and Chromium chose the ladder's top before its layout).
const PANEL = '(max-width: 760px) calc(100vw - 2rem), 21rem';
const details = new DetailsPanel({
  panel: document.getElementById('media-panel'),
  body: document.getElementById('library-body'),
  grid: picks,
  draw: (media, node) => drawDetails(media, node),
  onChange: describeSelection,
});

// The tile after `node` in the grid (none at its end, or for a tile outside it): where "Save and next" goes.
function nextTile(node) {
  const all = picks.tiles();
  return all.includes(node) ? all[all.indexOf(node) + 1] || null : null;
}

function drawDetails(media, node) {
  const status = el('p', {class: 'message', role: 'status', 'aria-live': 'polite', hidden: true});
  // Where a refused delete names the pages in the way.
  const usedIn = el('div', {class: 'used-in'});
  // The image's own answer (its pages, its look-alikes): asked once, by whichever of the two
  // sections is opened first.
  const full = once(() => api('GET', `/api/builder/media/${media.id}`));
  const altId = `alt-${media.id}`;
  const altInput = el('input', {id: altId, value: media.alt || '', maxlength: '300'});
  const folderId = `folder-${media.id}`;
  const folderInput = el('input', {id: folderId, value: media.folder || '/', maxlength: '255'});
  const tagsId = `tags-${media.id}`;
  const tagsInput = el('input', {id: tagsId, value: (media.tags || []).join(', '), maxlength: '900', list: 'tag-list'});
  const nameId = `name-${media.id}`;
  const nameInput = el('input', {id: nameId, value: media.name || '', maxlength: '200', size: '8'});
  // The readable name's public URL (PUT …/name): shown once it has one.
  const namedLink = el('a', {class: 'named-url', target: '_blank', rel: 'noopener'});
  function showNamed() {
    namedLink.hidden = !media.named_url;
    namedLink.href = media.named_url || '';
    namedLink.textContent = media.named_url ? media.named_url.split('/').pop() : '';
  }
  showNamed();
  // The larger picture; the focal point is picked on it: a click, or its marker by keyboard.
  const large = picture(media, PANEL, {alt: media.alt || '', width: '336', height: '336', loading: 'eager',
    title: 'Click where the subject is to set the focal point'});
  const thumb = large.querySelector('img');
  const focalHelpId = `focal-help-${media.id}`;
  const focal = focalPicker(media, large, focalHelpId, setFocal);
  const sizeText = el('p', {class: 'muted size-line'}, sizeLine(media));
  const crops = el('p', {class: 'crops-line'});
  const replaceInput = el('input', {id: `replace-${media.id}`, type: 'file', accept: 'image/*', required: true});
  function showCrops() {
    const names = Object.keys(media.crops || {});
    crops.textContent = names.length ? `Named crops: ${names.join(', ')} (Edit to draw or change them).`
      : 'No named crops yet (Edit to draw one: hero, card, og…).';
  }
  showCrops();
  // New bytes or a new crop give new URLs (the version changes): show the new picture, here and
  // on the tile.
  function refresh(saved) {
    Object.assign(media, saved);
    showImage(large, media);
    const shownTile = node.querySelector('picture');
    if (shownTile) showImage(shownTile, media);
    node.querySelector('.filename').textContent = media.filename;
    node.querySelector('.size').textContent = tileLine(media);
    node.dataset.filename = media.filename;
    sizeText.textContent = sizeLine(media);
    title.textContent = media.filename;
    showCrops();
    focal.place();
  }
  async function setFocal(x, y) {
    try {
      refresh(await api('PUT', `/api/builder/media/${media.id}/focal-point`, {x, y}));
      show(status, `Focal point set: the crops now keep (${x}, ${y}) in view.`, 'ok');
    } catch (error) {
      show(status, error.message, 'error');
    }
  }
  async function saveFields() {
    const tags = tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean);
    const saved = await api('PATCH', `/api/builder/media/${media.id}`,
      {alt: altInput.value, folder: folderInput.value, tags});
    Object.assign(media, {alt: saved.alt, folder: saved.folder, tags: saved.tags});
    folderInput.value = saved.folder;
    tagsInput.value = saved.tags.join(', ');
    thumb.alt = saved.alt || '';
    loadFacets();
  }
  const next = nextTile(node);
  const head = details.head(media.filename);
  const title = head.querySelector('.panel-title');
  return [
    head,
    focal.frame,
    el('p', {class: 'muted', id: focalHelpId}, 'Click the picture where the subject is to set the focal point, '
      + 'or focus the marker: arrows move it (Shift: faster), Enter sets it.'),
    sizeText,
    el('form', {class: 'panel-form', onsubmit: async (event) => {
      event.preventDefault();
      const andNext = event.submitter && event.submitter.value === 'next';
      try {
        await saveFields();
        show(status, 'Saved.', 'ok');
        if (andNext && next && next.isConnected && next.media) {
          details.open(next.media, next, {focus: `#alt-${next.media.id}`});
          focusTileQuietly(next);
        }
      } catch (error) {
        show(status, error.message, 'error');
      }
    }},
    el('label', {for: altId}, 'Alt text'), altInput,
    el('label', {for: folderId}, 'Folder'), folderInput,
    el('label', {for: tagsId}, 'Tags'), tagsInput,
    el('div', {class: 'row small'},
      el('button', {type: 'submit', value: 'save', class: 'secondary', 'aria-label': `Save alt text, folder and tags of ${media.filename}`}, 'Save'),
      next ? el('button', {type: 'submit', value: 'next', class: 'secondary'}, 'Save and next') : null)),
    el('form', {class: 'name-form', onsubmit: async (event) => {
      event.preventDefault();
      try {
        const saved = await api('PUT', `/api/builder/media/${media.id}/name`, {name: nameInput.value.trim() || null});
        media.name = saved.name;
        media.named_url = saved.named_url;
        nameInput.value = saved.name || '';
        showNamed();
        show(status, saved.name ? `Named ${saved.name}: its other names redirect here.` : 'It has no name now.', 'ok');
      } catch (error) {
        show(status, error.message, 'error');
      }
    }},
    el('label', {for: nameId}, 'Name in URL'),
    el('div', {class: 'row small'}, nameInput,
      el('button', {type: 'submit', class: 'secondary', 'aria-label': `Save name of ${media.filename}`}, 'Save name')),
    namedLink),
    crops,
    el('div', {class: 'row small'},
      el('button', {type: 'button', 'aria-label': `Edit ${media.filename}`, onclick: () => openEditor({
        image: media, base: `/api/builder/media/${media.id}`,
        onSaved: (answer) => refresh(imageIn(answer, media.id))})}, 'Edit'),
      el('button', {type: 'button', class: 'danger', 'aria-label': `Delete ${media.filename}`,
        onclick: () => remove(media, node, status, usedIn)}, 'Delete')),
    usedIn, status,
    el('div', {class: 'panel-sections'},
      lazySection('Versions', `Versions of ${media.filename}`, async () => versionsPanel({
        base: `/api/builder/media/${media.id}`, name: media.filename,
        onRestored: (answer) => refresh(imageIn(answer, media.id))})),
      lazySection('Where used', `Where used: ${media.filename}`, async () => {
        const pages = (await full()).used_in;
        return pages.length ? el('p', {}, `Used on ${pages.length} page(s): `, pages.join(', '))
          : el('p', {}, 'Not used on any page.');
      }),
      lazySection('Look-alikes', `Look-alikes of ${media.filename}`, async () => nearList((await full()).near_duplicates)),
      lazySection('Deliveries', `Deliveries of ${media.filename}`, () => deliveryChart(media.id, media.filename))),
    el('form', {class: 'row small replace-form', onsubmit: async (event) => {
      event.preventDefault();
      const file = replaceInput.files[0];
      if (!file) return;
      const form = new FormData();
      form.append('file', file);
      try {
        refresh(await upload(`/api/builder/media/${media.id}`, form, () => {}, 'PUT'));
        event.target.reset();
        show(status, 'Replaced: pages using it show the new image; the old one is in the trash.', 'ok');
      } catch (error) {
        show(status, error.message, 'error');
      }
    }},
    el('label', {for: replaceInput.id}, 'Replace file'), replaceInput,
    el('button', {type: 'submit', class: 'secondary', 'aria-label': `Replace the file of ${media.filename}`}, 'Replace')),
  ];
}

// The tile whose details "Save and next" opened is the one selected and the grid's Tab stop;
// the focus stays in the panel's alt text box.
function focusTileQuietly(node) {
  picks.current(node, {focus: false});
  picks.only(node);
  node.scrollIntoView({block: 'nearest'});
}

function removed(node) {
  if (details.for === node) details.close({focus: false});
  const after = nextTile(node);
  node.remove();
  picks.forget(node);
  if (after) picks.current(after);
}

async function remove(media, node, status, usedIn) {
  try {
    await api('DELETE', `/api/builder/media/${media.id}`);
    removed(node);
    pageMessage(`${media.filename} deleted.`, 'ok');
    recount(-1);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409 && error.details.pages)) {
      show(status, error.message, 'error');
      return;
    }
    const pages = error.details.pages;
    usedIn.replaceChildren(el('p', {class: 'message warning', role: 'alert'},
      `Not deleted: it is used on ${pages.length} page(s): ${pages.join(', ')}.`));
    if (!(await askForce(media, pages))) return;
    try {
      await api('DELETE', `/api/builder/media/${media.id}?force=1`);
      removed(node);
      pageMessage(`${media.filename} deleted and removed from ${pages.join(', ')}.`, 'ok');
      recount(-1);
    } catch (forced) {
      show(status, forced.message, 'error');
    }
  }
}

// A new search (or a folder, then a sort, chosen quickly) supersedes the list still loading:
// its answer would be appended to the new one's.
const askingList = newest();

async function load(reset) {
  const current = askingList();
  if (reset) after = null;
  listStatus.textContent = 'Loading…';
  try {
    const filters = new URLSearchParams({per_page: 48});
    if (after) filters.set('after', after);
    let answer;
    if (trashView) {
      filters.set('from', 'builder');
      answer = await api('GET', `/api/trash?${filters}`);
    } else {
      if (query) filters.set('q', query);
      if (folder) filters.set('folder', folder);
      if (tag) filters.set('tag', tag);
      if (color) filters.set('color', color);
      if (unused !== '') filters.set('unused', unused);
      if (sort !== 'newest') filters.set('sort', sort);
      answer = await api('GET', `/api/builder/media?${filters}`);
    }
    if (!current()) return;
    // A new list replaces the tiles in one step once its answer is here: emptied while it was
    // asked for, the page collapsed and the browser kept what was below the grid in view (after
    // a bulk action the page ended at its bottom).
    const made = answer.items.map(trashView ? trashCard : card);
    if (reset) {
      shown = 0;
      const showing = details.for && details.for.dataset.id;
      grid.replaceChildren(...made);
      // The details stay open on an image the new list still has (after a bulk action, say),
      // drawn from its new answer; otherwise they close.
      const again = showing && made.find((node) => node.dataset.id === showing && node.media);
      if (again) details.open(again.media, again, {focus: null});
      else details.close({focus: false});
    } else {
      grid.append(...made);
    }
    picks.drawn();
    shown += answer.items.length;
    after = answer.next;
    total = answer.total;
    totalExact = answer.total_exact !== false;
    more.hidden = !answer.next;
    describeCount();
    describeSelection();
  } catch (error) {
    if (!current()) return;
    if (reset) {  // not the last list's tiles under this one's error
      shown = 0;
      details.close({focus: false});
      grid.replaceChildren();
    }
    show(listStatus, error.message, 'error');
  }
}

searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
  query = searchForm.q.value.trim();
  folder = searchForm.folder.value;
  tag = searchForm.tag.value.trim();
  color = searchForm.color.value.trim();
  unused = searchForm.unused.value.trim();
  sort = searchForm.sort.value;
  picks.clear();
  load(true);
});

// A trashed image: no picture (nothing in the trash is served), its name and when it goes.
function trashCard(item) {
  const card = picks.tile(item.id, item.filename, [
    el('p', {class: 'filename'}, item.filename),
    el('p', {class: 'size'}, `${formatBytes(item.bytes)} · ${item.width}×${item.height}`),
    el('p', {class: 'size'}, `Deleted ${formatDate(item.deleted_at)}; kept until ${formatDate(item.purge_after)}.`),
  ], null);
  card.classList.add('no-picture');  // the selection's tick goes beside the name, not over it (console.css)
  return card;
}

const trashButton = document.getElementById('show-trash');
trashButton.addEventListener('click', () => {
  trashView = !trashView;
  trashButton.setAttribute('aria-pressed', String(trashView));
  trashButton.textContent = trashView ? 'Back to the library' : 'Trash';
  for (const node of document.querySelectorAll('.library-only')) node.hidden = trashView;
  for (const node of document.querySelectorAll('.trash-only')) node.hidden = !trashView;
  picks.clear();
  load(true);
});
selectAll.addEventListener('click', () => picks.selectAllMatching());
document.getElementById('select-none').addEventListener('click', () => picks.clear());
document.getElementById('bulk-move').addEventListener('submit', (event) => {
  event.preventDefault();
  const to = event.target.folder.value.trim();
  bulkAction('move', {folder: to}, `Moved to ${to}:`);
});
document.getElementById('bulk-tag').addEventListener('submit', (event) => {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === 'untag' ? 'untag' : 'tag';
  const tags = event.target.tags.value.split(',').map((t) => t.trim()).filter(Boolean);
  bulkAction(action, {tags}, action === 'tag' ? `Tagged “${tags.join(', ')}”:` : `Untagged “${tags.join(', ')}”:`);
});
document.getElementById('bulk-delete').addEventListener('click', async () => {
  const count = picks.allMatching ? countOf({total, total_exact: totalExact}) : picks.count();
  if (!count || await confirmAction({title: `Delete ${count} image(s)?`, yes: 'Delete',
    text: 'They go to the trash, where they can be restored. Images pages use are kept and listed.'})) {
    bulkAction('delete', {}, 'Deleted');
  }
});
document.getElementById('bulk-restore').addEventListener('click', () => bulkAction('restore', {}, 'Restored'));
searchForm.folder.addEventListener('change', () => searchForm.requestSubmit());
searchForm.sort.addEventListener('change', () => searchForm.requestSubmit());
// "Show more" adds the next page under the tiles shown and moves the focus to its first tile
// (the page stays where it was: the browser keeps the tiles in view where they were).
more.addEventListener('click', async () => {
  const before = picks.tiles().length;
  await load(false);
  const first = picks.tiles()[before];
  // (Unless the focus went elsewhere meanwhile; the button hides itself after the last page.)
  if (first && (document.activeElement === more || document.activeElement === document.body)) picks.current(first);
});

// Many files or a folder at once: a queue of single uploads (bulk-upload.js), each with the
// form's alt text, folder and tags as they were when it was queued.
function libraryForm(file, fields) {
  const form = new FormData();
  form.append('file', file);
  for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
  return form;
}
const fieldsOf = new WeakMap();  // file → the form's fields when it was queued
const bulk = bulkPanel(uploadList, {
  send: (file, progress, abort) => sendForm('/api/builder/media', libraryForm(file, fieldsOf.get(file)), progress, abort),
  onStored(item) {
    const stored = item.body;
    if (stored) {
      warnNear(uploadList, item.name, stored.near_duplicates,
        async () => (await api('GET', `/api/builder/media/${stored.id}`)).near_duplicates);
    }
  },
  onDone() {
    load(true);  // newest first: the new images lead the list, with the counts updated
    loadFacets();
  },
});
function queueFiles(files) {
  const fields = {alt: uploadForm.alt.value.trim(), folder: uploadForm.folder.value.trim(),
    tags: uploadForm.tags.value.trim()};
  for (const file of files) fieldsOf.set(file, fields);
  bulk.upload(files);
}
uploadForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const files = [...uploadForm.file.files, ...uploadForm.directory.files];
  if (!files.length) {
    pageMessage('Choose images or a folder to upload.');
    return;
  }
  queueFiles(files);
  uploadForm.reset();
});
dropTarget(document.getElementById('dropzone'), queueFiles);

// Images from URLs (POST /api/builder/media/import-url), with the form's alt text, folder and
// tags: 201 stored, 200 the same image was already in the library.
foldBehind(document.getElementById('url-toggle'), document.getElementById('url-form'));
urlImport({
  form: document.getElementById('url-form'),
  fields() {
    const typed = {alt: uploadForm.alt.value.trim(), folder: uploadForm.folder.value.trim(),
      tags: uploadForm.tags.value.trim()};
    return Object.fromEntries(Object.entries(typed).filter(([, value]) => value));
  },
  list: document.getElementById('url-list'),
  status: document.getElementById('url-status'),
  path: () => '/api/builder/media/import-url',
  words: (code, media) => (code === 201 ? `stored as ${media.filename}` : `already there as ${media.filename}`),
  onDone(stored) {
    if (!stored) return;
    load(true);
    loadFacets();
  },
});

const groups = document.getElementById('near-groups');
const groupsStatus = document.getElementById('near-status');
document.getElementById('show-near').addEventListener('click', () => showGroups(groups, groupsStatus));
document.getElementById('show-exact').addEventListener('click', () => showExactGroups(
  document.getElementById('exact-groups'), document.getElementById('exact-status')));

// A page's library images without alt text: the page is typed by its slug.
const pageAltStatus = document.getElementById('page-alt-status');
const pageSlug = document.getElementById('page-alt-slug');
const loadPageAlt = missingAlt({
  base: () => `/api/builder/pages/${encodeURIComponent(pageSlug.value.trim())}`,
  list: document.getElementById('page-alt-list'),
  form: document.getElementById('page-alt-form'),
  none: document.getElementById('page-alt-none'),
  status: pageAltStatus,
  noun: 'image',
});
document.getElementById('page-alt-pick').addEventListener('submit', async (event) => {
  event.preventDefault();
  pageAltStatus.textContent = '';
  try {
    const left = await loadPageAlt();
    pageAltStatus.textContent = `${left} image(s) of this page without alt text.`;
  } catch (error) {
    document.getElementById('page-alt-form').hidden = true;
    document.getElementById('page-alt-none').hidden = true;
    pageAltStatus.textContent = error.message;
  }
});

// /console/library?open=<id> (the ops dashboard's links): that image's details once the first
// page is drawn; an image not on it gets a tile of its own, outside the grid.
async function openLinked() {
  const id = new URLSearchParams(location.search).get('open');
  if (!id) return;
  let node = picks.tiles().find((one) => one.dataset.id === id);
  if (!node) {
    try {
      node = card(await api('GET', `/api/builder/media/${encodeURIComponent(id)}`));
    } catch (error) {
      pageMessage(error.message);
      return;
    }
  }
  if (node.isConnected) picks.only(node);
  details.open(node.media, node);
}

load(true).then(openLinked);
loadFacets();
