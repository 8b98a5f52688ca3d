// One-time upload links (editors and admins), on the uploads screen: create one (its secret
// shown once, with a copy button), list them with their uses, revoke one.
import {api, el, formatBytes, formatDate, newest, show} from './api.js';
import {confirmAction} from './confirm.js';

const form = document.getElementById('link-form');
const created = document.getElementById('link-created');
const secretBox = document.getElementById('link-secret');
const copyStatus = document.getElementById('copy-status');
const status = document.getElementById('link-status');
const table = document.querySelector('#links-table tbody');
const more = document.getElementById('more-links');
const MB = 1024 * 1024;
const field = (name) => form.elements.namedItem(name);

let after = null;

function describe(target) {
  if (target.kind === 'product') return `product ${target.sku}`;
  if (target.kind === 'builder') {
    const tags = (target.tags || []).length ? ` · ${target.tags.join(', ')}` : '';
    return `library ${target.folder || '/'}${tags}`;
  }
  return `uploads${target.visibility ? ` (${target.visibility})` : ''}`;
}

function row(link) {
  const name = link.label || describe(link.target);
  const revoke = link.state === 'live' || link.state === 'used_up'
    ? el('button', {type: 'button', class: 'danger', 'aria-label': `Revoke link ${name}`, onclick: async () => {
      if (!await confirmAction({title: `Revoke the link "${name}"?`, text: 'It stops taking uploads at once.',
        yes: 'Revoke'})) return;
      try {
        const revoked = await api('DELETE', `/api/upload-links/${link.id}`);
        node.replaceWith(row(revoked));
        // The row drawn anew has no Revoke button to keep the focus: it goes to the links'
        // table (a Tab stop of its own), where it was, not to the page's start.
        table.closest('.table-wrap').focus();
        show(status, `Link "${name}" revoked.`, 'ok');
      } catch (error) {
        show(status, error.message, 'error');
      }
    }}, 'Revoke')
    : null;
  const node = el('tr', {dataset: {id: link.id}},
    el('td', {}, link.label || '—'),
    el('td', {}, describe(link.target), el('br'), el('span', {class: 'muted'}, `files up to ${formatBytes(link.max_bytes)}`)),
    el('td', {class: 'uses'}, `${link.uses} of ${link.max_uses}`),
    el('td', {}, el('span', {class: `badge ${link.state === 'live' ? 'public' : 'warning'}`}, link.state.replace('_', ' '))),
    el('td', {}, formatDate(link.expires_at)),
    el('td', {}, revoke));
  return node;
}

const askingList = newest();  // a reload while another is on its way: the newest answer only

async function load(reset) {
  const current = askingList();
  if (reset) {
    after = null;
    table.replaceChildren();
  }
  try {
    const query = new URLSearchParams({per_page: 20});
    if (after) query.set('after', after);
    const answer = await api('GET', `/api/upload-links?${query}`);
    if (!current()) return;
    table.append(...answer.items.map(row));
    after = answer.next;
    more.hidden = !answer.next;
    if (!table.children.length) table.append(el('tr', {}, el('td', {colspan: '6', class: 'muted'}, 'No links yet.')));
  } catch (error) {
    if (current()) show(status, error.message, 'error');
  }
}

function showFields() {
  const kind = field('target').value;
  for (const part of form.querySelectorAll('[data-for]')) part.hidden = part.dataset.for !== kind;
}

field('target').addEventListener('change', showFields);
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const kind = field('target').value;
  const target = {kind};
  if (kind === 'builder') {
    if (field('folder').value.trim()) target.folder = field('folder').value.trim();
    const tags = field('tags').value.split(',').map((tag) => tag.trim()).filter(Boolean);
    if (tags.length) target.tags = tags;
  }
  if (kind === 'product') target.sku = field('sku').value.trim();
  const body = {target, max_uses: Number(field('uses').value), expires_in: Math.round(Number(field('hours').value) * 3600)};
  if (field('size').value) body.max_bytes = Math.round(Number(field('size').value) * MB);
  if (field('label').value.trim()) body.label = field('label').value.trim();
  try {
    const answer = await api('POST', '/api/upload-links', body);
    secretBox.value = answer.secret;
    document.getElementById('link-upload-url').textContent = answer.upload_url;
    document.getElementById('link-tus-url').textContent = answer.tus_url;
    copyStatus.textContent = '';
    created.hidden = false;
    show(status, '');
    secretBox.focus();
    secretBox.select();
    load(true);
  } catch (error) {
    created.hidden = true;
    show(status, error.message, 'error');
  }
});

document.getElementById('copy-secret').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(secretBox.value);
    copyStatus.textContent = 'Secret copied.';
  } catch {
    secretBox.select();  // no clipboard permission: selected, to copy by hand
    copyStatus.textContent = 'Select and copy it by hand.';
  }
});
more.addEventListener('click', () => load(false));

showFields();
load(true);
