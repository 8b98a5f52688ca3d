// An image's versions (library media, a product photo): each one kept with what changed, when,
// its size and until when it is kept; restore one as the current version; compare one with the
// current version side by side (a slider between before and after) with the heat map of what
// changed and the share of pixels. `base` is the image's API path (…/media/{id}, …/images/{id}).
import {api, consoleMedia, el, formatBytes, formatDate, show} from './api.js';

const CHANGES = {upload: 'uploaded', bytes: 'new file', edits: 'edits', focal_point: 'focal point',
  crops: 'named crops'};

function describe(version) {
  const what = version.changed.map((name) => CHANGES[name] || name).join(', ');
  const restored = version.restored_from ? ` (restored ${version.restored_from})` : '';
  return `${what}${restored}`;
}

function compareView(base, name, before, after, compared) {
  const slider = el('input', {type: 'range', min: '0', max: '100', value: '50',
    id: `slider-${before.id}-${after.id}`, class: 'compare-slider'});
  const afterImg = el('img', {src: consoleMedia(after.preview_url), alt: `${name}, current version ${after.id}`,
    class: 'compare-after'});
  const clip = () => { afterImg.style.clipPath = `inset(0 0 0 ${slider.value}%)`; };
  slider.addEventListener('input', clip);
  clip();
  const percent = (compared.changed_share * 100).toFixed(1);
  return el('div', {class: 'compare'},
    el('p', {}, `${percent}% of the pixels changed from version ${before.id} to ${after.id}.`),
    el('div', {class: 'compare-pair'},
      el('img', {src: consoleMedia(before.preview_url), alt: `${name}, version ${before.id}`, class: 'compare-before'}),
      afterImg),
    el('label', {for: slider.id}, `Before (${before.id}) / after (${after.id})`), slider,
    el('figure', {class: 'heat-map'},
      el('img', {src: consoleMedia(compared.heat_map_url), alt: `Heat map of what changed: ${percent}% of the pixels`,
        width: String(compared.width), height: String(compared.height)}),
      el('figcaption', {class: 'muted'}, 'Heat map: dark is unchanged, red to white changed most.')));
}

export function versionsPanel({base, name, onRestored}) {
  const status = el('p', {class: 'message', role: 'status', 'aria-live': 'polite', hidden: true});
  const list = el('ul', {class: 'versions-list'});
  const comparison = el('div', {class: 'versions-compare'});
  const panel = el('section', {class: 'versions', 'aria-label': `Versions of ${name}`},
    el('h3', {}, `Versions of ${name}`), list, comparison, status);

  async function load() {
    try {
      const {items} = await api('GET', `${base}/versions`);
      const current = items[0];
      list.replaceChildren(...items.map((version) => el('li', {class: 'version', dataset: {version: version.id}},
        el('img', {src: consoleMedia(version.preview_url), alt: `${name}, version ${version.id}`, width: '80', height: '80',
          loading: 'lazy'}),
        el('div', {},
          el('p', {class: 'filename'}, version.current ? `${version.id} · current` : version.id),
          el('p', {class: 'muted'}, describe(version)),
          el('p', {class: 'muted'}, version.current
            ? `Since ${formatDate(version.since)} · ${formatBytes(version.bytes)}`
            : `Replaced ${formatDate(version.replaced_at)} · ${formatBytes(version.bytes)} · kept until ${formatDate(version.kept_until)}`),
          version.current ? null : el('div', {class: 'row small'},
            el('button', {type: 'button', class: 'secondary', 'aria-label': `Compare version ${version.id} with the current one`,
              onclick: () => compare(version, current)}, 'Compare'),
            el('button', {type: 'button', 'aria-label': `Restore version ${version.id}`,
              onclick: () => restore(version)}, 'Restore'))))));
      if (items.length === 1) show(status, 'No earlier version yet: a replace, an edit, a focal point or a crop keeps one.', '');
    } catch (error) {
      show(status, error.message, 'error');
    }
  }
  async function compare(before, after) {
    try {
      const compared = await api('GET', `${base}/versions/${before.id}/compare/${after.id}`);
      comparison.replaceChildren(compareView(base, name, before, after, compared));
    } catch (error) {
      show(status, error.message, 'error');
    }
  }
  async function restore(version) {
    try {
      const answer = await api('POST', `${base}/versions/${version.id}/restore`);
      show(status, `Version ${version.id} restored as the current one; the one it replaced is kept.`, 'ok');
      comparison.replaceChildren();
      if (onRestored) onRestored(answer);
      await load();
    } catch (error) {
      show(status, error.message, 'error');
    }
  }
  load();
  return panel;
}
