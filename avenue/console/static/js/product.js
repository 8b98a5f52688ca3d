// One product (admin): upload photos with progress, reorder by drag or keyboard, delete one,
// see its variants and any legacy entries still pointing outside storage.
import {api, el, formatBytes, formatPrice, pageMessage, upload, uploadEach} from './api.js';
import {confirmAction} from './confirm.js';
import {gridSizes, picture} from './picture.js';
import {warnNear} from './near.js';
import {imageIn, openEditor} from './editor.js';
import {versionsPanel} from './versions.js';
import {missingAlt} from './alttext.js';
import {urlImport} from './urlimport.js';

const root = document.getElementById('product');
const sku = root.dataset.sku;
const base = `/api/shop/products/${encodeURIComponent(sku)}`;
const photos = document.getElementById('photos');
const orderStatus = document.getElementById('order-status');
const uploadList = document.getElementById('upload-list');
const dropzone = document.getElementById('dropzone');
const picker = document.getElementById('files');
// A .photos cell's picture: at most about 21rem wide (below 10.5rem + 10.5rem), about 10rem
// on a wide screen.
const CELL = gridSizes('(max-width: 480px) calc(50vw - 2rem), 21rem');

let product = null;

function stored() {
  return product.images.filter((image) => !image.legacy);
}

function renderDetails() {
  document.getElementById('p-name').textContent = product.name || '';
  document.getElementById('p-price').textContent = formatPrice(product.price);
  document.getElementById('p-count').textContent = `${stored().length} stored, ${product.legacy_images} legacy`;
  const legacy = product.images.filter((image) => image.legacy);
  const box = document.getElementById('legacy');
  box.hidden = legacy.length === 0;
  box.replaceChildren(
    el('p', {}, `${legacy.length} photo(s) of this product are legacy references, not in storage: `
      + 'run `flask --app avenue import-legacy UPLOADS_DIR` to move them in. Until then they cannot be reordered.'),
    el('ul', {}, legacy.map((image) => el('li', {}, `${image.url} (${image.source === 'local_filesystem' ? 'local disk' : 'elsewhere'})`))));
}

function variantsList(image) {
  const sizes = image.variant_sizes || {};
  return el('details', {class: 'variants'},
    el('summary', {}, 'Variants'),
    el('ul', {}, Object.entries(image.variants || {}).map(([name, url]) =>
      el('li', {}, el('a', {href: url, target: '_blank', rel: 'noopener'}, name),
      sizes[name] ? ` (${sizes[name].width}×${sizes[name].height})` : ''))),
    el('p', {class: 'muted'}, `Original: ${image.width}×${image.height}, ${formatBytes(image.bytes)}, ${image.content_type}`));
}

// The photo's versions, fetched when opened; a restore draws the photos again.
function versionsDetails(image) {
  const details = el('details', {class: 'variants versions-details'}, el('summary', {}, 'Versions'));
  details.addEventListener('toggle', () => {
    if (details.open && !details.querySelector('.versions')) {
      details.append(versionsPanel({base: `${base}/images/${image.id}`, name: image.filename, onRestored: edited}));
    }
  });
  return details;
}

function photoItem(image, index, count) {
  const label = `Photo ${index + 1} of ${count}: ${image.filename}`;
  const item = el('li', {class: 'photo', draggable: 'true', tabindex: '0', 'aria-label': label,
    dataset: {id: image.id}},
  picture(image, CELL, {width: '160', height: '160'}),
  el('span', {class: 'position'}, index === 0 ? '1 · primary' : String(index + 1)),
  el('span', {class: 'filename'}, image.filename),
  // A deduplicated photo is one file: deleting it here leaves it on the others.
  image.also_on && image.also_on.length
    ? el('p', {class: 'muted also-on'}, `Also on ${image.also_on.join(', ')}`) : null,
  el('div', {class: 'row small'},
    el('button', {type: 'button', class: 'secondary', 'aria-label': `Move ${image.filename} earlier`,
      disabled: index === 0, onclick: () => move(image.id, -1)}, 'Earlier'),
    el('button', {type: 'button', class: 'secondary', 'aria-label': `Move ${image.filename} later`,
      disabled: index === count - 1, onclick: () => move(image.id, 1)}, 'Later'),
    el('button', {type: 'button', class: 'secondary', 'aria-label': `Edit ${image.filename}`,
      onclick: () => openEditor({image, base: `${base}/images/${image.id}`, onSaved: edited})}, 'Edit'),
    el('button', {type: 'button', class: 'danger', 'aria-label': `Delete ${image.filename}`,
      onclick: () => remove(image)}, 'Delete')),
  nameForm(image),
  variantsList(image),
  versionsDetails(image));
  item.addEventListener('keydown', (event) => {
    if (event.target !== item || !event.altKey) return;
    // Up and down only: Alt+Left/Right are the browser's Back and Forward.
    if (event.key === 'ArrowUp') {
      event.preventDefault();
      move(image.id, -1);
    } else if (event.key === 'ArrowDown') {
      event.preventDefault();
      move(image.id, 1);
    }
  });
  item.addEventListener('dragstart', (event) => {
    event.dataTransfer.setData('text/plain', image.id);
    event.dataTransfer.effectAllowed = 'move';
    item.classList.add('dragging');
  });
  item.addEventListener('dragend', () => item.classList.remove('dragging'));
  item.addEventListener('dragover', (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'move';
  });
  item.addEventListener('drop', (event) => {
    event.preventDefault();
    event.stopPropagation();
    const dragged = event.dataTransfer.getData('text/plain');
    if (dragged && dragged !== image.id) placeAt(dragged, (ids) => ids.indexOf(image.id));
  });
  return item;
}

// The photo's readable name in its public URL (PUT …/name): typed freely, stored as a slug.
function nameForm(image) {
  const id = `name-${image.id}`;
  const input = el('input', {id, type: 'text', maxlength: '200', size: '8', value: image.name || ''});
  const form = el('form', {class: 'name-form', onsubmit: async (event) => {
    event.preventDefault();
    try {
      const answer = await api('PUT', `${base}/images/${image.id}/name`, {name: input.value.trim() || null});
      edited(answer);
      orderStatus.textContent = answer.name ? `${image.filename} is now named ${answer.name}.`
        : `${image.filename} has no name now.`;
    } catch (error) {
      pageMessage(`${image.filename} was not named: ${error.message}`);
    }
  }},
  el('label', {for: id}, `Name in URL for ${image.filename}`),
  el('div', {class: 'row small'}, input,
    el('button', {type: 'submit', class: 'secondary', 'aria-label': `Save the name of ${image.filename}`}, 'Save')),
  image.named_url ? el('a', {href: image.named_url, target: '_blank', rel: 'noopener', class: 'named-url'},
    image.named_url.split('/').pop()) : null);
  return form;
}

// An editor's answer (the product, or the photo alone): the card shows the new version.
function edited(answer) {
  if (answer && Array.isArray(answer.images)) product = answer;
  else product.images = product.images.map((one) => (one.id === answer.id ? imageIn(answer, one.id) : one));
  renderPhotos();
}

function renderPhotos(focusId) {
  const images = stored();
  photos.replaceChildren(...images.map((image, index) => photoItem(image, index, images.length)));
  if (!images.length) photos.append(el('li', {class: 'muted'}, 'No photos yet.'));
  if (focusId) photos.querySelector(`[data-id="${focusId}"]`)?.focus();
}

function render(focusId) {
  renderDetails();
  renderPhotos(focusId);
}

// The photo changes (reorder, delete) run one at a time, in the order they were asked, each
// on the product the previous one's answer drew. Each answer is the product after its own
// change: two in flight at once could be drawn out of order (a photo just deleted back on the
// screen), and a second "Earlier" pressed before the first answer moved the photo from where
// it had been, so two presses moved it once.
let turn = Promise.resolve();
function inTurn(work) {
  const run = turn.then(work);
  turn = run.catch(() => {});
  return run;
}

async function saveOrder(ids, focusId) {
  try {
    product = await api('PUT', `${base}/images/order`, {image_ids: ids});
    render(focusId);
    const position = ids.indexOf(focusId) + 1;
    orderStatus.textContent = `Order saved: now photo ${position} of ${ids.length}.`;
  } catch (error) {
    pageMessage(`The new order was not saved: ${error.message}`);
    render(focusId);
  }
}

// Move photo ``id`` to the place ``where(ids)`` gives, reckoned on the photos as they are when
// its turn comes.
function placeAt(id, where) {
  return inTurn(async () => {
    const ids = stored().map((image) => image.id);
    const from = ids.indexOf(id);
    const target = where(ids);
    if (from < 0 || target < 0 || target >= ids.length || from === target) return;
    ids.splice(from, 1);
    ids.splice(target, 0, id);
    await saveOrder(ids, id);
  });
}

function move(id, step) {
  return placeAt(id, (ids) => ids.indexOf(id) + step);
}

async function remove(image) {
  if (!await confirmAction({title: `Delete ${image.filename} from ${sku}?`, yes: 'Delete',
    text: 'Its file and variants are removed from storage.'})) return;
  await inTurn(async () => {
    try {
      const ids = stored().map((one) => one.id);
      const at = ids.indexOf(image.id);
      product = await api('DELETE', `${base}/images/${image.id}`);
      // The focus was on the photo's Delete button, gone with it: it goes on to the next photo
      // (else the one before; the last one gone, to adding photos), not to the page's start.
      const left = new Set(stored().map((one) => one.id));
      const neighbour = [...ids.slice(at + 1), ...ids.slice(0, at).reverse()].find((id) => left.has(id));
      render(neighbour);
      if (!neighbour) picker.focus();
      orderStatus.textContent = `${image.filename} deleted.`;
    } catch (error) {
      pageMessage(`${image.filename} was not deleted: ${error.message}`);
    }
  });
}

async function addFiles(files) {
  await uploadEach(files, uploadList, async (file, progress) => {
    const form = new FormData();
    form.append('images', file);
    const answer = await upload(`${base}/images`, form, progress);
    product = answer.product;
    render();
    // As the library does: name the product photos the new one looks like (stored all the same).
    for (const added of answer.added || []) {
      warnNear(uploadList, file.name, added.near_duplicates,
        async () => (await api('GET', `${base}/images/${added.id}/near-duplicates`)).near_duplicates);
    }
  });
  // The new photos have no alt text yet: the list of those without is read again.
  try {
    await loadMissingAlt();
  } catch (error) {
    pageMessage(error.message);
  }
}

picker.addEventListener('change', () => {
  addFiles([...picker.files]);
  picker.value = '';
});
for (const name of ['dragenter', 'dragover']) {
  dropzone.addEventListener(name, (event) => {
    if (!event.dataTransfer.types.includes('Files')) return;
    event.preventDefault();
    dropzone.classList.add('over');
  });
}
dropzone.addEventListener('dragleave', () => dropzone.classList.remove('over'));
dropzone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropzone.classList.remove('over');
  if (event.dataTransfer.files.length) addFiles([...event.dataTransfer.files]);
});

// Photos from URLs (POST …/images/import-url): 201 added, 200 the product already had it.
urlImport({
  form: document.getElementById('url-form'),
  list: document.getElementById('url-list'),
  status: document.getElementById('url-status'),
  path: () => `${base}/images/import-url`,
  words(code, answer) {
    product = answer.product;
    render();
    return code === 201 ? 'added to the product' : 'already on this product';
  },
  async onDone(added) {
    if (!added) return;
    try {
      await loadMissingAlt();  // the new photos have no alt text yet
    } catch (error) {
      pageMessage(error.message);
    }
  },
});

const loadMissingAlt = missingAlt({
  base,
  list: document.getElementById('alt-list'),
  form: document.getElementById('alt-form'),
  none: document.getElementById('alt-none'),
  status: document.getElementById('alt-status'),
  nothing: () => (product && !stored().length ? 'Add a photo first: this product has none.' : ''),
  onSaved: async () => {
    product = await api('GET', base);
    render();
  },
});

(async () => {
  try {
    product = await api('GET', base);
    render();
    await loadMissingAlt();
  } catch (error) {
    pageMessage(error.message);
  }
})();
