// Products (admin): the list with search, and the form that creates one.
import {ApiError, api, countOf, el, formatPrice, newest, show} from './api.js';

const tbody = document.querySelector('#products-table tbody');
const listStatus = document.getElementById('list-status');
const more = document.getElementById('more');
const searchForm = document.getElementById('search-form');
const createForm = document.getElementById('create-form');
const createStatus = document.getElementById('create-status');

const loaded = [];
// The next page's cursor (the API's `next`): "Load more" reaches any depth, and products
// added meanwhile never repeat or shift what is shown.
let after = null;

function row(product) {
  const link = el('a', {href: `/console/products/${encodeURIComponent(product.sku)}`}, product.sku);
  return el('tr', {},
    el('th', {scope: 'row'}, link),
    el('td', {}, product.name || ''),
    el('td', {}, formatPrice(product.price)),
    el('td', {}, String(product.images.length - product.legacy_images)),
    el('td', {}, product.legacy_images ? el('span', {class: 'badge warning'}, `${product.legacy_images} legacy`) : 'none'));
}

function render(products, note) {
  tbody.replaceChildren(...products.map(row));
  listStatus.textContent = note;
}

// Only the answer asked last is drawn: a double click on "Show more" once appended the same
// page twice, and a slow SKU lookup could replace the search typed after it.
const askingMore = newest();
const askingSearch = newest();

async function loadMore() {
  const current = askingMore();
  try {
    const filters = new URLSearchParams({per_page: 50});
    if (after) filters.set('after', after);
    const page = await api('GET', `/api/shop/products?${filters}`);
    if (!current()) return;
    loaded.push(...page.items);
    after = page.next;
    more.hidden = !page.next;
    render(loaded, `${loaded.length} of ${countOf(page)} products shown.`);
  } catch (error) {
    if (current()) show(listStatus, error.message, 'error');
  }
}

// Search: an exact SKU is looked up on the server; names and SKU parts are matched among
// the products loaded so far (the list API has no text search).
searchForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const q = searchForm.q.value.trim();
  const current = askingSearch();
  if (!q) {
    render(loaded, `${loaded.length} products shown.`);
    return;
  }
  const needle = q.toLowerCase();
  const found = loaded.filter((p) => p.sku.toLowerCase().includes(needle) || (p.name || '').toLowerCase().includes(needle));
  if (!found.some((p) => p.sku === q)) {
    try {
      found.unshift(await api('GET', `/api/shop/products/${encodeURIComponent(q)}`));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404) && current()) show(listStatus, error.message, 'error');
    }
  }
  if (!current()) return;
  render(found, found.length ? `${found.length} match(es) for “${q}”.` : `No product matches “${q}”.`);
});

more.addEventListener('click', loadMore);

createForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const sku = createForm.sku.value.trim();
  const name = createForm.name.value.trim();
  const price = createForm.price.value.trim();
  if (!sku || !name || !price) {
    show(createStatus, 'Fill in the SKU, the name and the price.', 'error');
    return;
  }
  show(createStatus, 'Creating…');
  try {
    const product = await api('POST', '/api/shop/products', {sku, name, price: Number(price)});
    location.assign(`/console/products/${encodeURIComponent(product.sku)}`);
  } catch (error) {
    show(createStatus, error.message, 'error');
  }
});

loadMore();
