// A product's photos (admin) or a page's library images (editors) without alt text: each with
// the texts the API suggests (no model: the product's name and the photo's place, or the pages
// using it; its file name, folder, tags and colour), the first already in its box; edit any,
// then save them all in one request (POST …/alt-text), which answers image by image.
import {api, el} from './api.js';
import {gridSizes, picture} from './picture.js';

const THUMB = gridSizes('6rem');

// `prefix`: the list's own id, so a box's id is unique on a page that shows the same image
// elsewhere (the library's cards have alt boxes of their own).
function row(item, prefix) {
  const image = item.image;
  const id = `${prefix}-${image.id}`;
  const input = el('input', {id, type: 'text', maxlength: '500', value: item.suggestions[0] || '',
    dataset: {id: image.id}});
  const choices = item.suggestions.length > 1
    ? el('select', {'aria-label': `Suggestions for ${image.filename}`,
      onchange: (event) => { input.value = event.target.value; }},
    item.suggestions.map((text) => el('option', {value: text}, text)))
    : null;
  return el('li', {class: 'alt-item'},
    picture(image, THUMB, {width: '96', height: '96'}),
    el('div', {class: 'alt-fields'},
      el('label', {for: id}, item.position ? `Alt text for photo ${item.position}, ${image.filename}`
        : `Alt text for ${image.filename}`),
      input,
      choices));
}

// Draw the list into `list` (`none` shown instead when it is empty); `status` says what was
// saved; `onSaved(results)` runs after a save and before the status is written; `noun`: what
// the status calls them. `base`: the product's or page's API path, or a function giving it (a
// page chosen on the screen). `nothing()`: what `none` says when there is nothing to describe
// at all (a product without photos), else its own words ("Every photo has alt text."), which
// would be false there.
export function missingAlt({base, list, form, none, status, onSaved = () => {}, noun = 'photo',
  nothing = () => ''}) {
  const path = () => (typeof base === 'function' ? base() : base);
  const allSet = none.textContent;
  async function load() {
    const page = await api('GET', `${path()}/alt-text?per_page=100`);
    list.replaceChildren(...page.items.map((item) => row(item, list.id || 'alt')));
    form.hidden = page.items.length === 0;
    none.hidden = page.items.length > 0;
    none.textContent = nothing() || allSet;
    return page.items.length;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const images = [...list.querySelectorAll('input[data-id]')]
      .filter((input) => input.value.trim())
      .map((input) => ({id: input.dataset.id, alt: input.value}));
    if (!images.length) {
      status.textContent = 'Type or choose an alt text first.';
      return;
    }
    try {
      const answer = await api('POST', `${path()}/alt-text`, {images});
      const saved = answer.results.filter((result) => result.status === 'set').length;
      // The page redraws what it shows first (a product's photos: a name typed after the status
      // came would be drawn over), then the list and the status say the save is done.
      let redrawn = '';
      try {
        await onSaved(answer.results);
      } catch (error) {
        redrawn = ` The page was not redrawn: ${error.message}`;
      }
      const left = await load();
      status.textContent = `Saved the alt text of ${saved} ${noun}(s); ${left} still without.${redrawn}`;
      // The form hidden with the last of them took the focus from its button: it goes on to the
      // line that says none is left, not to the page's start.
      if (!left) {
        none.tabIndex = -1;
        none.focus();
      }
    } catch (error) {
      status.textContent = `Nothing was saved: ${error.message}`;
    }
  });
  return load;
}
