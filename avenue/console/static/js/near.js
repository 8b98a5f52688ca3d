// Near-duplicates in the media library: an image's look-alikes (re-saved, resized or cropped
// copies, with the distance of their perceptual hashes), and the groups of them in the whole
// library (GET /api/builder/media/near-duplicates, page by page).
import {api, consoleMedia, el, show} from './api.js';

// "Looks like: [thumb] name (3 bits)": the matches an upload or an image answer carries.
export function nearList(matches) {
  if (!matches || !matches.length) return el('p', {class: 'muted near-none'}, 'No look-alikes in the library.');
  return el('div', {class: 'near-list'},
    el('p', {}, `Looks like ${matches.length} other image(s):`),
    el('ul', {class: 'near-matches'}, ...matches.map((match) => el('li', {dataset: {id: match.id}},
      match.thumb ? el('img', {src: consoleMedia(match.thumb), alt: '', width: '48', height: '48', loading: 'lazy'}) : null,
      el('span', {}, `${match.filename || match.id} `),
      el('span', {class: 'muted'}, `(${match.distance} bit${match.distance === 1 ? '' : 's'} apart)`)))));
}

// An upload's warning: "name: looks like …" under the upload list, when the new image has
// look-alikes. An answer leaves near_duplicates out when its lookup was late (docs/api.md):
// then `later` asks for them once the upload is stored, so a late lookup hides no warning.
export async function warnNear(list, name, matches, later) {
  let found = matches;
  if (found === undefined) {
    try {
      found = await later();
    } catch {
      return;  // a warning, not the upload: the image is stored all the same
    }
  }
  if (found && found.length) list.append(el('li', {class: 'message warning near-upload'}, `${name}: `, nearList(found)));
}

// The groups view: each group's images side by side, "Show more" for the next page.
export async function showGroups(container, status, after = null) {
  if (!after) container.replaceChildren();
  status.textContent = 'Loading…';
  try {
    const query = new URLSearchParams({per_page: 20});
    if (after) query.set('after', after);
    const answer = await api('GET', `/api/builder/media/near-duplicates?${query}`);
    container.append(...answer.items.map((group) => el('li', {class: 'near-group', dataset: {id: group.id}},
      el('p', {}, `${group.images.length} look-alike images`),
      el('ul', {class: 'near-matches'}, ...group.images.map((image) => el('li', {dataset: {id: image.id}},
        el('img', {src: consoleMedia(image.variants.thumb), alt: image.alt || '', width: '96', height: '96', loading: 'lazy'}),
        el('span', {}, image.filename)))))));
    const shown = container.children.length;
    status.textContent = shown ? `${shown} group(s) of near-duplicates.` : 'No near-duplicates in the library.';
    if (answer.next) {
      status.append(' ', el('button', {type: 'button', class: 'secondary',
        onclick: () => showGroups(container, status, answer.next)}, 'Show more groups'));
    }
  } catch (error) {
    show(status, error.message, 'error');
  }
}

// Exact duplicates (GET /api/builder/media/duplicates): each group's images, the same file or
// the same pixels, each with "Merge into this one" (POST /api/builder/media/merge): the pages
// using the others show it instead, the others go to the trash.
const KINDS = {bytes: 'The same file', pixels: 'The same pixels'};

export async function showExactGroups(container, status, after = null) {
  if (!after) container.replaceChildren();
  status.textContent = 'Loading…';
  try {
    const query = new URLSearchParams({per_page: 20});
    if (after) query.set('after', after);
    const answer = await api('GET', `/api/builder/media/duplicates?${query}`);
    container.append(...answer.items.map((group) => exactGroup(group, container, status)));
    const shown = container.children.length;
    status.textContent = shown ? `${shown} group(s) of exact duplicates.` : 'No exact duplicates in the library.';
    if (answer.next) {
      status.append(' ', el('button', {type: 'button', class: 'secondary',
        onclick: () => showExactGroups(container, status, answer.next)}, 'Show more groups'));
    }
  } catch (error) {
    show(status, error.message, 'error');
  }
}

function exactGroup(group, container, status) {
  const item = el('li', {class: 'near-group exact-group', dataset: {id: group.id, kind: group.kind}},
    el('p', {}, `${KINDS[group.kind] || group.kind}: ${group.images.length} images`));
  const result = el('p', {class: 'merge-result', role: 'status'});
  item.append(el('ul', {class: 'near-matches'}, ...group.images.map((image) => el('li', {dataset: {id: image.id}},
    el('img', {src: consoleMedia(image.variants.thumb), alt: image.alt || '', width: '96', height: '96', loading: 'lazy'}),
    el('span', {}, image.filename),
    el('button', {type: 'button', class: 'secondary', 'aria-label': `Merge into this one: ${image.filename}`,
      onclick: () => merge(group, image, result, container, status)}, 'Merge into this one')))), result);
  return item;
}

async function merge(group, keep, result, container, status) {
  const others = group.images.filter((image) => image.id !== keep.id).map((image) => image.id);
  try {
    const answer = await api('POST', '/api/builder/media/merge', {keep: keep.id, others});
    const pages = [...new Set(answer.merged.flatMap((item) => item.pages))];
    await showExactGroups(container, status);
    show(status, `Merged ${answer.merged.length} image(s) into ${keep.filename}` +
      (pages.length ? `; pages changed: ${pages.join(', ')}.` : '.') + ' Restore from the trash to undo.');
  } catch (error) {
    show(result, error.message, 'error');
  }
}
