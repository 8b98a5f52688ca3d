// Media library (editors, admins): thumbnails, search by name, folder and tag, upload with
// progress, alt text, folder and tags, the focal point (click the picture, or type it),
// replacing an image's file in place, where each image is used, and deletion that shows
// the pages in the way before forcing it; many at once: select (click, shift-click for a range,
// or every image the filter matches), then move, tag, untag, delete or restore from the trash.
import {ApiError, api, countOf, el, formatBytes, formatDate, newest, pageMessage, sendForm, show, upload} from './api.js';
import {bulkPanel, dropTarget} from './bulk-upload.js';
import {gridSizes, picture, showImage} from './picture.js';
import {nearList, showExactGroups, showGroups, warnNear} from './near.js';
import {deliveryChart} from './cardchart.js';
import {imageIn, openEditor} from './editor.js';
import {versionsPanel} from './versions.js';
import {missingAlt} from './alttext.js';

const grid = document.getElementById('media-grid');
const listStatus = document.getElementById('list-status');
const more = document.getElementById('more');
const searchForm = document.getElementById('search-form');
const uploadForm = document.getElementById('upload-form');
const uploadList = document.getElementById('upload-list');
const dialog = document.getElementById('force-dialog');
// A .media-grid cell's picture: at most about 26rem wide (one column on a phone, below 13rem
// + 13rem), about 12rem on a wide screen.
const CELL = gridSizes('(max-width: 480px) calc(100vw - 5rem), 26rem');

let query = '';
let folder = '';
let tag = '';
let color = '';  // "#rrggbb": images mostly close to it
let sort = 'newest';  // or oldest, name, size (largest first)
let unused = '';  // days: images no page or product uses, older than that
let trashView = false;  // the library's trash instead of the library
// The selection: id → filename; or every image the filter matches (allMatching).
const selected = new Map();
let allMatching = false;
let lastChecked = null;  // the checkbox clicked last, for shift-click ranges
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

// --- selection and bulk actions (POST /api/builder/media/bulk) -----------------------------

const bulkCount = document.getElementById('bulk-count');
const bulkSummary = document.getElementById('bulk-summary');
const selectAll = document.getElementById('select-all');

function describeSelection() {
  const count = allMatching ? countOf({total, total_exact: totalExact}) : selected.size;
  bulkCount.textContent = allMatching ? `All ${count} matching image(s) selected.`
    : (count ? `${count} image(s) selected.` : 'No image selected.');
  selectAll.textContent = `Select all ${countOf({total, total_exact: totalExact})} matching`;
  selectAll.hidden = trashView;
  for (const box of grid.querySelectorAll('input.pick')) {
    box.checked = allMatching || selected.has(box.value);
    box.closest('li').classList.toggle('selected', box.checked);
  }
}

function clearSelection() {
  selected.clear();
  allMatching = false;
  lastChecked = null;
  describeSelection();
}

// A checkbox per card; shift-click checks or unchecks every card between it and the last one.
function pickBox(id, filename) {
  const box = el('input', {type: 'checkbox', class: 'pick', value: id, 'aria-label': `Select ${filename}`,
    dataset: {filename}});
  box.addEventListener('click', (event) => {
    if (allMatching) {  // narrowing "all matching" down: start from the cards shown
      allMatching = false;
      for (const other of grid.querySelectorAll('input.pick')) selected.set(other.value, other.dataset.filename);
    }
    const boxes = [...grid.querySelectorAll('input.pick')];
    const range = event.shiftKey && lastChecked && boxes.includes(lastChecked)
      ? boxes.slice(Math.min(boxes.indexOf(lastChecked), boxes.indexOf(box)),
        Math.max(boxes.indexOf(lastChecked), boxes.indexOf(box)) + 1)
      : [box];
    for (const one of range) {
      if (box.checked) selected.set(one.value, one.dataset.filename);
      else selected.delete(one.value);
    }
    lastChecked = box;
    describeSelection();
  });
  return el('p', {class: 'select'}, box, el('span', {'aria-hidden': 'true'}, 'Select'));
}

function currentFilter() {
  const filter = {};
  if (query) filter.q = query;
  if (folder) filter.folder = folder;
  if (tag) filter.tag = tag;
  if (color) filter.color = color;
  if (unused !== '') filter.unused = Number(unused);
  return filter;
}

// One bulk action on the selection: by ids (500 a call), or by the filter (its `next` until done).
async function runBulk(action, extra, verb) {
  if (!allMatching && !selected.size) {
    show(bulkSummary, 'Select one or more images first.', 'error');
    return;
  }
  const names = new Map(selected);
  for (const box of grid.querySelectorAll('input.pick')) names.set(box.value, box.dataset.filename);
  let done = 0;
  const refused = [];
  bulkSummary.hidden = false;
  bulkSummary.className = '';
  bulkSummary.textContent = 'Working…';
  try {
    if (allMatching) {
      let after = null;
      do {
        const answer = await api('POST', '/api/builder/media/bulk',
          {action, filter: currentFilter(), ...extra, ...(after ? {after} : {})});
        done += answer.done;
        refused.push(...answer.refused);
        after = answer.next;
      } while (after);
    } else {
      const ids = [...selected.keys()];
      for (let start = 0; start < ids.length; start += 500) {
        const answer = await api('POST', '/api/builder/media/bulk', {action, ids: ids.slice(start, start + 500), ...extra});
        done += answer.done;
        refused.push(...answer.refused);
      }
    }
  } catch (error) {
    show(bulkSummary, error.message, 'error');
    return;
  }
  const why = (r) => (r.code === 'media_in_use'
    ? `used on ${r.pages.length} page(s): ${r.pages.join(', ')}; kept (delete it alone to remove it from them).`
    : r.message);
  const lines = refused.map((r) => el('li', {}, `${names.get(r.id) || r.id}: ${why(r)}`));
  bulkSummary.replaceChildren(
    el('p', {class: `message ${refused.length ? 'warning' : 'ok'}`}, `${verb} ${done} image(s).`
      + (refused.length ? ` ${refused.length} refused:` : '')),
    ...(lines.length ? [el('ul', {class: 'refused'}, ...lines)] : []));
  clearSelection();
  await load(true);
  loadFacets();
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
  document.getElementById('force-text').textContent =
    `${media.filename} is used on ${pages.length} page(s): ${pages.join(', ')}. Deleting it removes its blocks from those pages.`;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'force'), {once: true});
    dialog.showModal();
  });
}

// "4000×3000 · 1.2 MB · date": what a card says about the picture (again after a replace).
function sizeLine(media) {
  return `${media.width}×${media.height} · ${formatBytes(media.bytes)} · ${formatDate(media.uploaded_at)}`;
}

function card(media) {
  const status = el('p', {class: 'message', role: 'status', 'aria-live': 'polite', hidden: true});
  const usedIn = el('div', {class: 'used-in'});
  const altId = `alt-${media.id}`;
  const altInput = el('input', {id: altId, value: media.alt || '', maxlength: '300'});
  const folderId = `folder-${media.id}`;
  const folderInput = el('input', {id: folderId, value: media.folder || '/', maxlength: '255'});
  const tagsId = `tags-${media.id}`;
  const tagsInput = el('input', {id: tagsId, value: (media.tags || []).join(', '), maxlength: '900'});
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
  // The rendition that fits the grid cell, in the best format the browser takes.
  const shown = picture(media, CELL, {alt: media.alt || '', width: '200', height: '200',
    title: 'Click where the subject is to set the focal point'});
  const thumb = shown.querySelector('img');
  const marker = el('span', {class: 'focal-marker', 'aria-hidden': 'true'});
  const frame = el('div', {class: 'focal-frame'}, shown, marker);
  const focalX = el('input', {id: `fx-${media.id}`, type: 'number', min: '0', max: '1', step: '0.01', required: true});
  const focalY = el('input', {id: `fy-${media.id}`, type: 'number', min: '0', max: '1', step: '0.01', required: true});
  const replaceInput = el('input', {id: `replace-${media.id}`, type: 'file', accept: 'image/*', required: true});

  // Where the picture is drawn inside the square (object-fit: contain leaves bands).
  function drawnBox() {
    const box = thumb.getBoundingClientRect();
    const scale = Math.min(box.width / (thumb.naturalWidth || 1), box.height / (thumb.naturalHeight || 1));
    const width = (thumb.naturalWidth || box.width) * scale;
    const height = (thumb.naturalHeight || box.height) * scale;
    return {left: (box.width - width) / 2, top: (box.height - height) / 2, width, height, box};
  }
  function placeMarker() {
    const point = media.focal_point || {x: 0.5, y: 0.5};
    focalX.value = point.x;
    focalY.value = point.y;
    const drawn = drawnBox();
    marker.style.left = `${drawn.left + point.x * drawn.width}px`;
    marker.style.top = `${drawn.top + point.y * drawn.height}px`;
  }
  // New bytes or a new crop give new URLs (the version changes): show the new thumbnail.
  function refresh(saved) {
    Object.assign(media, saved);
    showImage(shown, saved);
    item.querySelector('.muted').textContent = sizeLine(saved);
    placeMarker();
  }
  async function setFocal(x, y) {
    try {
      refresh(await api('PUT', `/api/builder/media/${media.id}/focal-point`, {x, y}));
      show(status, `Focal point set: the crops now keep (${x}, ${y}) in view.`, 'ok');
    } catch (error) {
      show(status, error.message, 'error');
    }
  }
  thumb.addEventListener('load', placeMarker);
  thumb.addEventListener('click', (event) => {
    const drawn = drawnBox();
    const clamp = (v) => Math.min(1, Math.max(0, Math.round(v * 100) / 100));
    setFocal(clamp((event.clientX - drawn.box.left - drawn.left) / drawn.width),
      clamp((event.clientY - drawn.box.top - drawn.top) / drawn.height));
  });
  const item = el('li', {class: 'media-card', dataset: {id: media.id}},
    pickBox(media.id, media.filename),
    frame,
    el('p', {class: 'filename'}, media.filename),
    el('p', {class: 'muted'}, sizeLine(media)),
    el('form', {class: 'row small', onsubmit: async (event) => {
      event.preventDefault();
      try {
        const tags = tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean);
        const saved = await api('PATCH', `/api/builder/media/${media.id}`,
          {alt: altInput.value, folder: folderInput.value, tags});
        Object.assign(media, {alt: saved.alt, folder: saved.folder, tags: saved.tags});
        folderInput.value = saved.folder;
        tagsInput.value = saved.tags.join(', ');
        show(status, 'Saved.', 'ok');
        loadFacets();
      } catch (error) {
        show(status, error.message, 'error');
      }
    }},
    el('label', {for: altId}, 'Alt text'), altInput,
    el('label', {for: folderId}, 'Folder'), folderInput,
    el('label', {for: tagsId}, 'Tags'), tagsInput,
    el('button', {type: 'submit', class: 'secondary', 'aria-label': `Save alt text, folder and tags of ${media.filename}`}, 'Save')),
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
    el('form', {class: 'row small focal-form', onsubmit: (event) => {
      event.preventDefault();
      setFocal(Number(focalX.value), Number(focalY.value));
    }},
    el('label', {for: focalX.id}, 'Focal x'), focalX,
    el('label', {for: focalY.id}, 'Focal y'), focalY,
    el('button', {type: 'submit', class: 'secondary', 'aria-label': `Set focal point of ${media.filename}`}, 'Set focal point')),
    el('form', {class: 'row small replace-form', onsubmit: async (event) => {
      event.preventDefault();
      const file = replaceInput.files[0];
      if (!file) return;
      const form = new FormData();
      form.append('file', file);
      try {
        refresh(await upload(`/api/builder/media/${media.id}`, form, () => {}, 'PUT'));
        item.querySelector('.filename').textContent = media.filename;
        event.target.reset();
        show(status, 'Replaced: pages using it show the new image; the old one is in the trash.', 'ok');
      } catch (error) {
        show(status, error.message, 'error');
      }
    }},
    el('label', {for: replaceInput.id}, 'Replace file'), replaceInput,
    el('button', {type: 'submit', class: 'secondary', 'aria-label': `Replace the file of ${media.filename}`}, 'Replace')),
    el('div', {class: 'row small'},
      el('button', {type: 'button', 'aria-label': `Edit ${media.filename}`, onclick: () => openEditor({
        image: media, base: `/api/builder/media/${media.id}`,
        onSaved: (answer) => refresh(imageIn(answer, media.id))})}, 'Edit'),
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Versions of ${media.filename}`,
        onclick: () => usedIn.replaceChildren(versionsPanel({base: `/api/builder/media/${media.id}`,
          name: media.filename, onRestored: (answer) => refresh(imageIn(answer, media.id))}))}, 'Versions'),
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Where used: ${media.filename}`,
        onclick: async () => {
          try {
            const full = await api('GET', `/api/builder/media/${media.id}`);
            usedIn.replaceChildren(full.used_in.length
              ? el('p', {}, `Used on ${full.used_in.length} page(s): `, full.used_in.join(', '))
              : el('p', {}, 'Not used on any page.'));
          } catch (error) {
            show(status, error.message, 'error');
          }
        }}, 'Where used'),
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Look-alikes of ${media.filename}`,
        onclick: async () => {
          try {
            usedIn.replaceChildren(nearList((await api('GET', `/api/builder/media/${media.id}`)).near_duplicates));
          } catch (error) {
            show(status, error.message, 'error');
          }
        }}, 'Look-alikes'),
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Deliveries of ${media.filename}`,
        onclick: async () => {
          try {
            usedIn.replaceChildren(await deliveryChart(media.id, media.filename));
          } catch (error) {
            show(status, error.message, 'error');
          }
        }}, 'Deliveries'),
      el('button', {type: 'button', class: 'danger', 'aria-label': `Delete ${media.filename}`,
        onclick: () => remove(media, item, status, usedIn)}, 'Delete')),
    usedIn, status);
  return item;
}

async function remove(media, item, status, usedIn) {
  try {
    await api('DELETE', `/api/builder/media/${media.id}`);
    item.remove();
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
      item.remove();
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
  if (reset) {
    after = null;
    shown = 0;
    grid.replaceChildren();
  }
  listStatus.textContent = 'Loading…';
  try {
    const filters = new URLSearchParams({per_page: 48});
    if (after) filters.set('after', after);
    if (trashView) {
      filters.set('from', 'builder');
      const answer = await api('GET', `/api/trash?${filters}`);
      if (!current()) return;
      grid.append(...answer.items.map(trashCard));
      shown += answer.items.length;
      after = answer.next;
      total = answer.total;
      totalExact = answer.total_exact !== false;
      more.hidden = !answer.next;
      describeCount();
      describeSelection();
      return;
    }
    if (query) filters.set('q', query);
    if (folder) filters.set('folder', folder);
    if (tag) filters.set('tag', tag);
    if (color) filters.set('color', color);
    if (unused !== '') filters.set('unused', unused);
    if (sort !== 'newest') filters.set('sort', sort);
    const answer = await api('GET', `/api/builder/media?${filters}`);
    if (!current()) return;
    grid.append(...answer.items.map(card));
    shown += answer.items.length;
    after = answer.next;
    total = answer.total;
    totalExact = answer.total_exact !== false;
    more.hidden = !answer.next;
    describeCount();
    describeSelection();
  } catch (error) {
    if (current()) show(listStatus, error.message, 'error');
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
  clearSelection();
  load(true);
});

// A trashed image: no picture (nothing in the trash is served), its name and when it goes.
function trashCard(item) {
  return el('li', {class: 'media-card', dataset: {id: item.id}},
    pickBox(item.id, item.filename),
    el('p', {class: 'filename'}, item.filename),
    el('p', {class: 'muted'}, `${item.width}×${item.height} · ${formatBytes(item.bytes)} · deleted ${formatDate(item.deleted_at)}`),
    el('p', {class: 'muted'}, `Kept until ${formatDate(item.purge_after)}.`));
}

const trashButton = document.getElementById('show-trash');
trashButton.addEventListener('click', () => {
  trashView = !trashView;
  trashButton.setAttribute('aria-pressed', String(trashView));
  trashButton.textContent = trashView ? 'Back to the library' : 'Trash';
  for (const node of document.querySelectorAll('.library-only')) node.hidden = trashView;
  for (const node of document.querySelectorAll('.trash-only')) node.hidden = !trashView;
  clearSelection();
  load(true);
});
selectAll.addEventListener('click', () => {
  allMatching = true;
  describeSelection();
});
document.getElementById('select-none').addEventListener('click', clearSelection);
document.getElementById('bulk-move').addEventListener('submit', (event) => {
  event.preventDefault();
  const to = event.target.folder.value.trim();
  runBulk('move', {folder: to}, `Moved to ${to}:`);
});
document.getElementById('bulk-tag').addEventListener('submit', (event) => {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === 'untag' ? 'untag' : 'tag';
  const tags = event.target.tags.value.split(',').map((t) => t.trim()).filter(Boolean);
  runBulk(action, {tags}, action === 'tag' ? `Tagged “${tags.join(', ')}”:` : `Untagged “${tags.join(', ')}”:`);
});
document.getElementById('bulk-delete').addEventListener('click', () => {
  const count = allMatching ? countOf({total, total_exact: totalExact}) : selected.size;
  if (!count || window.confirm(`Delete ${count} image(s)? Images pages use are kept and listed.`)) {
    runBulk('delete', {}, 'Deleted');
  }
});
document.getElementById('bulk-restore').addEventListener('click', () => runBulk('restore', {}, 'Restored'));
searchForm.folder.addEventListener('change', () => searchForm.requestSubmit());
searchForm.sort.addEventListener('change', () => searchForm.requestSubmit());
more.addEventListener('click', () => load(false));

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

load(true);
loadFacets();
