// A grid of tiles as one multi-select list box (WAI-ARIA's listbox pattern), as media libraries
// select: a click selects one tile alone and opens it, Ctrl/Cmd-click adds or removes one,
// Shift-click selects the range from the tile selected last. One Tab stop (the tile focused
// last): the arrows move (up and down by a row), Home and End, Space selects or unselects,
// Shift+arrows and Shift+Space extend the range, Ctrl/Cmd+A selects every tile shown, Enter
// opens, Esc asks to close. Beside the tiles shown, "all matching" stands for every item a
// filter matches, loaded or not. The library's grid (library.js) draws the selection. A grid
// without bulk actions (the uploads) selects one tile at a time (`multiple: false`): the
// modifiers then do what a plain click or key does.
import {el} from './api.js';

export class TileGrid {
  // `list` is the <ul role="listbox">; `onChange()` after each change of the selection,
  // `onEscape()` on Esc.
  constructor(list, {onChange = () => {}, onEscape = () => {}, multiple = true} = {}) {
    this.list = list;
    this.multiple = multiple;
    this.onChange = onChange;
    this.onEscape = onEscape;
    this.selected = new Map();  // id → file name
    this.allMatching = false;
    this.anchor = null;  // the tile selected last: where a range starts
  }

  tiles() {
    return [...this.list.querySelectorAll('li[role="option"]')];
  }

  // A tile of `children`; `open(byKey)` shows its details (none: it has none).
  tile(id, filename, children, open = null) {
    const node = el('li', {role: 'option', class: 'media-card media-tile', tabindex: '-1', 'aria-selected': 'false',
      dataset: {id, filename}, title: filename}, ...children);
    node.addEventListener('click', (event) => this.clicked(event, node, open));
    node.addEventListener('keydown', (event) => this.pressed(event, node, open));
    return node;
  }

  count() {
    return this.selected.size;
  }

  any() {
    return this.allMatching || this.selected.size > 0;
  }

  isSelected(node) {
    return this.allMatching || this.selected.has(node.dataset.id);
  }

  clear() {
    this.selected.clear();
    this.allMatching = false;
    this.anchor = null;
    this.onChange();
  }

  selectAllMatching() {
    this.allMatching = true;
    this.onChange();
  }

  // `node` alone (a plain click; "Save and next"; a link to one image).
  only(node) {
    this.allMatching = false;
    this.selected.clear();
    this.selected.set(node.dataset.id, node.dataset.filename);
    this.anchor = node;
    this.onChange();
  }

  forget(node) {
    this.selected.delete(node.dataset.id);
    this.onChange();
  }

  // The one tile in the Tab order (roving tabindex), focused unless `focus` is false.
  current(node, {focus = true, scroll = true} = {}) {
    if (!node) return;
    for (const other of this.tiles()) other.tabIndex = other === node ? 0 : -1;
    if (focus) node.focus({preventScroll: !scroll});
  }

  // A list drawn anew: its first tile in the Tab order until another is focused.
  drawn() {
    const all = this.tiles();
    if (all.length && !all.some((node) => node.tabIndex === 0)) all[0].tabIndex = 0;
  }

  // Narrowing "all matching" down: start from the tiles shown.
  leaveAllMatching() {
    if (!this.allMatching) return;
    this.allMatching = false;
    for (const node of this.tiles()) this.selected.set(node.dataset.id, node.dataset.filename);
  }

  range(node) {
    this.leaveAllMatching();
    const all = this.tiles();
    const from = this.anchor && all.includes(this.anchor) ? all.indexOf(this.anchor) : all.indexOf(node);
    const to = all.indexOf(node);
    for (const one of all.slice(Math.min(from, to), Math.max(from, to) + 1)) {
      this.selected.set(one.dataset.id, one.dataset.filename);
    }
  }

  toggle(node) {
    this.leaveAllMatching();
    if (this.selected.has(node.dataset.id)) this.selected.delete(node.dataset.id);
    else this.selected.set(node.dataset.id, node.dataset.filename);
    this.anchor = node;
  }

  columns() {
    const all = this.tiles();
    if (!all.length) return 1;
    const top = all[0].offsetTop;
    const count = all.findIndex((node) => node.offsetTop !== top);
    return count === -1 ? all.length : count;
  }

  clicked(event, node, open) {
    const adding = this.multiple && (event.ctrlKey || event.metaKey);
    const extending = this.multiple && event.shiftKey;
    if (extending) this.range(node);
    else if (adding) this.toggle(node);
    if (extending || adding) {
      this.current(node, {scroll: false});
      this.onChange();
      return;
    }
    this.current(node, {scroll: false});
    this.only(node);
    // After the focus: on a phone the details cover the grid and take the focus.
    if (open) open(false);
  }

  pressed(event, node, open) {
    const all = this.tiles();
    const index = all.indexOf(node);
    const moves = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -this.columns(), ArrowDown: this.columns(),
      Home: -index, End: all.length - 1 - index};
    if (event.key in moves) {
      event.preventDefault();
      const next = all[Math.min(all.length - 1, Math.max(0, index + moves[event.key]))];
      if (event.shiftKey && this.multiple) {
        if (!this.anchor) this.anchor = node;
        this.range(next);
        this.onChange();
      }
      this.current(next);
    } else if (event.key === ' ' && !this.multiple) {
      event.preventDefault();
      this.only(node);
    } else if (event.key === ' ') {
      event.preventDefault();
      if (event.shiftKey) this.range(node);
      else this.toggle(node);
      this.onChange();
    } else if (event.key === 'Enter') {
      event.preventDefault();
      if (open) open(true);
    } else if (event.key === 'Escape') {
      this.onEscape(event);
    } else if (event.key === 'a' && (event.ctrlKey || event.metaKey) && this.multiple) {
      event.preventDefault();
      this.leaveAllMatching();
      for (const one of all) this.selected.set(one.dataset.id, one.dataset.filename);
      this.onChange();
    }
  }
}
