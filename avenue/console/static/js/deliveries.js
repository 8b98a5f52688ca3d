// The ops dashboard's Delivery section: most served, heaviest, one image's days (uPlot, the
// vendored chart library the history uses), never served, and the clean-up list.
import {api, consoleMedia, el, formatBytes, formatDate, newest, show} from './api.js';

const status = document.getElementById('delivery-status');
let chart = null;

// A row names its image as ops know it: its thumbnail and file name (an image deleted since:
// its bucket and the end of its id; an earlier version of a replaced image: the name it was
// served under, said to be earlier, no thumbnail). The button's accessible name holds its
// visible text (axe-core's label-content-name-mismatch), the full path is its title.
function row(item) {
  const name = `${item.bucket}/${item.image}`;
  const known = item.filename || `${item.bucket} …${item.image.slice(-8)}`;
  const shown = item.filename && !item.current ? `${known} (earlier version)` : known;
  const pick = el('button', {type: 'button', class: 'delivery-pick', title: name, 'aria-label': `Chart ${shown}`,
                             onclick: () => drawImage(item.bucket, item.image, shown)},
                  item.thumbnail ? thumb(item.thumbnail) : null,
                  shown);
  const open = item.bucket === 'builder' && item.filename ? details(item.image, shown) : null;
  return el('tr', {}, el('td', {}, pick, open), el('td', {}, item.requests.toLocaleString()),
            el('td', {}, formatBytes(item.bytes)));
}

// A library image's details panel (/console/library?open=<id>), for those who may open the
// library (its link is in the menu): "Details", named for screen readers with the file name
// (its visible text first, as axe-core's label-content-name-mismatch asks).
const LIBRARY = document.querySelector('.top nav a[href$="/console/library"]')?.getAttribute('href');

function details(id, filename) {
  if (!LIBRARY) return null;
  return el('a', {class: 'details-link', href: `${LIBRARY}?open=${encodeURIComponent(id)}`},
            'Details', el('span', {class: 'visually-hidden'}, ` of ${filename}`));
}

async function drawImage(bucket, image, label = `${bucket}/${image}`) {
  const answer = await api('GET', `/api/admin/deliveries/images/${bucket}/${image}`);
  document.getElementById('delivery-image').textContent =
    `${label} (last served ${formatDate(answer.last_served)})`;
  const target = document.getElementById('delivery-chart');
  const x = answer.days.map((day) => Date.parse(`${day.day}T00:00:00Z`) / 1000);
  const y = answer.days.map((day) => day.requests);
  chart?.destroy();
  chart = new window.uPlot({width: Math.max(280, target.clientWidth || 600), height: 160,
    series: [{}, {label: 'answers', stroke: '#2a6fdb', fill: 'rgba(42,111,219,0.15)'}]}, [x, y], target);
  target.dataset.days = String(x.length);
}

// A thumbnail beside an image's name (decorative: the name says which image it is). Loaded at
// once, not lazily: the lists hold 90 at most, of a few KB each, far down the dashboard (on a
// phone thousands of pixels), and a lazy one there stayed blank until scrolled near, or was
// fetched at once when its list came before the cards above it had grown the page: which of
// them was drawn depended on the order the answers came in.
function thumb(src) {
  return el('img', {src: consoleMedia(src), alt: '', width: '40', height: '40', decoding: 'async', class: 'delivery-thumb'});
}

// A library image in a list: its thumbnail and file name (the file), its details' link.
function imageItem(image, extra) {
  const open = details(image.id, image.filename || image.id);
  return el('li', {}, el('a', {href: image.url}, image.variants?.thumb ? thumb(image.variants.thumb) : null,
                         image.filename || image.id), extra ? ` — ${extra}` : '', open ? ' · ' : '', open);
}

const askingCleanup = newest();  // the number of days typed last is listed

async function loadCleanup() {
  const days = document.getElementById('cleanup-days').value || '90';
  const list = document.getElementById('cleanup-list');
  const current = askingCleanup();
  try {
    const answer = await api('GET', `/api/admin/cleanup?days=${encodeURIComponent(days)}&per_page=50`);
    if (!current()) return;
    list.replaceChildren(...answer.items.map((image) =>
      imageItem(image, image.last_served ? `last served ${formatDate(image.last_served)}` : 'never served')));
    if (!answer.items.length) list.replaceChildren(el('li', {class: 'muted'}, 'Nothing to clean up on this page.'));
  } catch (error) {
    if (current()) show(status, error.message, 'error');
  }
}

async function load() {
  try {
    const [top, heaviest, never] = await Promise.all([
      api('GET', '/api/admin/deliveries/top?by=requests&limit=10'),
      api('GET', '/api/admin/deliveries/top?by=bytes&limit=10'),
      api('GET', '/api/admin/deliveries/never-served?per_page=20'),
    ]);
    document.querySelector('#delivery-top tbody').replaceChildren(...top.items.map(row));
    document.querySelector('#delivery-heaviest tbody').replaceChildren(...heaviest.items.map(row));
    document.getElementById('delivery-never').replaceChildren(...never.items.map((image) => imageItem(image)));
    show(status, top.items.length ? '' : 'Nothing served yet in this range.');
    if (top.items.length) await drawImage(top.items[0].bucket, top.items[0].image, top.items[0].filename || undefined);
  } catch (error) {
    show(status, error.message, 'error');
  }
  await loadCleanup();
}

document.getElementById('cleanup-days').addEventListener('change', loadCleanup);
load();
