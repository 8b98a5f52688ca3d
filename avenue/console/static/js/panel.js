// The details panel beside a grid of tiles (tilegrid.js): the library's images, the uploads.
// It shows one tile's details, drawn by the screen's own `draw(item, node)`; beside the grid on
// a wide screen, the whole screen on a phone, where it is a page of its own: what it covers is
// inert (out of the Tab order and of screen readers' reach), Tab and Shift+Tab go round inside
// it, and Esc (or Close) returns to the tile it came from.
import {el} from './api.js';
import {wrapTab} from './focus.js';

// The width at which console.css draws the panel over the whole screen.
export const PHONE = window.matchMedia('(max-width: 760px)');

export class DetailsPanel {
  // `panel` is the <aside> shown beside `body` (the grid's and the panel's box), `grid` the
  // TileGrid; `draw(item, node)` gives the panel's content (its title an element with class
  // "panel-title" and tabindex -1), `onChange()` runs after each open and close.
  constructor({panel, body, grid, draw, onChange = () => {}}) {
    this.panel = panel;
    this.body = body;
    this.grid = grid;
    this.draw = draw;
    this.onChange = onChange;
    this.for = null;  // the tile whose details are shown
    this.covered = [];
    panel.addEventListener('keydown', (event) => this.pressed(event));
  }

  // `focus`: "title" (the default; the panel's heading), a selector inside the panel, or null
  // (the focus stays where it is, except on a phone, where the panel covers it).
  open(item, node, {focus = 'title'} = {}) {
    this.for = node;
    for (const other of this.grid.tiles()) other.classList.toggle('current', other === node);
    this.body.classList.add('with-panel');
    this.panel.hidden = false;
    this.panel.replaceChildren(...this.draw(item, node));
    this.onChange();
    this.cover(true);
    const target = focus && focus !== 'title' ? this.panel.querySelector(focus) : null;
    if (target) target.focus();
    else if (focus || PHONE.matches) this.panel.querySelector('.panel-title').focus();
  }

  close({focus = true} = {}) {
    const from = this.for;
    this.for = null;
    this.cover(false);
    this.panel.hidden = true;
    this.panel.replaceChildren();
    this.body.classList.remove('with-panel');
    for (const node of this.grid.tiles()) node.classList.remove('current');
    this.onChange();
    if (focus && from && from.isConnected) this.grid.current(from);
  }

  // The heading and its Close button, for `draw`.
  head(name) {
    return el('div', {class: 'panel-head'},
      el('h2', {id: 'panel-title', class: 'panel-title', tabindex: '-1'}, name),
      el('button', {type: 'button', class: 'secondary', 'aria-label': `Close the details of ${name}`,
        onclick: () => this.close()}, 'Close'));
  }

  cover(on) {
    for (const node of this.covered) node.inert = false;
    this.covered = [];
    if (!on || !PHONE.matches) return;
    for (let inside = this.panel; inside.parentElement && inside !== document.body; inside = inside.parentElement) {
      for (const sibling of inside.parentElement.children) {
        // Not a dialog: one opened from the panel (a confirmation) is over it, not under it.
        if (sibling !== inside && !sibling.inert && !['SCRIPT', 'DIALOG'].includes(sibling.tagName)) {
          sibling.inert = true;
          this.covered.push(sibling);
        }
      }
    }
  }

  pressed(event) {
    // A dialog opened from the panel (the editor, a confirmation) keeps its own keys.
    if (event.target.closest('dialog')) return;
    if (event.key === 'Escape') {
      event.preventDefault();
      this.close();
    } else if (PHONE.matches) {
      // Everything else is inert: Tab goes round inside the panel (focus.js).
      wrapTab(this.panel, event);
    }
  }
}

// A part of the details that costs a request (versions, where used, look-alikes, deliveries):
// a disclosure button (named `name`, showing `label`) over what `load()` (a promise of a node)
// puts under it the first time it is opened, not when the panel opens. Opened again, it shows
// what it loaded; a load that failed is tried again on the next opening.
let sections = 0;
export function lazySection(label, name, load) {
  sections += 1;
  const region = el('div', {class: 'section-body', id: `section-${sections}`, hidden: true});
  const button = el('button', {type: 'button', class: 'section-toggle', 'aria-expanded': 'false',
    'aria-controls': region.id, 'aria-label': name}, label);
  let loaded = false;
  button.addEventListener('click', async () => {
    const opening = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(opening));
    region.hidden = !opening;
    if (!opening || loaded) return;
    loaded = true;
    region.setAttribute('aria-busy', 'true');
    region.replaceChildren(el('p', {class: 'muted'}, 'Loading…'));
    try {
      region.replaceChildren(await load());
    } catch (error) {
      loaded = false;
      region.replaceChildren(el('p', {class: 'message error'}, error.message));
    } finally {
      region.removeAttribute('aria-busy');
    }
  });
  return el('div', {class: 'panel-section'}, button, region);
}

// `fetch()` asked once, its promise shared by the sections that read it (where used and
// look-alikes are both in the image's own answer); asked again after a failure.
export function once(fetch) {
  let asked = null;
  return () => {
    if (!asked) asked = fetch().catch((error) => { asked = null; throw error; });
    return asked;
  };
}
