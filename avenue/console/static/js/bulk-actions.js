// One bulk action on the library's selection (POST /api/builder/media/bulk): by ids, 500 a
// call, or, when "all matching" is selected, by the filter, following its `next` until done;
// then what it did and what it refused (by file name, with why) in `summary`. Resolves true
// once the action ran (the library then reloads), false when nothing was selected or a call failed.
import {api, el, show} from './api.js';

const PER_CALL = 500;

function why(refusal) {
  return refusal.code === 'media_in_use'
    ? `used on ${refusal.pages.length} page(s): ${refusal.pages.join(', ')}; kept (delete it alone to remove it from them).`
    : refusal.message;
}

export async function runBulk(picks, {summary, filter, action, extra, verb}) {
  if (!picks.any()) {
    show(summary, 'Select one or more images first.', 'error');
    return false;
  }
  const names = new Map(picks.selected);
  for (const node of picks.tiles()) names.set(node.dataset.id, node.dataset.filename);
  let done = 0;
  const refused = [];
  summary.hidden = false;
  summary.className = '';
  summary.textContent = 'Working…';
  try {
    if (picks.allMatching) {
      let after = null;
      do {
        const answer = await api('POST', '/api/builder/media/bulk', {action, filter, ...extra, ...(after ? {after} : {})});
        done += answer.done;
        refused.push(...answer.refused);
        after = answer.next;
      } while (after);
    } else {
      const ids = [...picks.selected.keys()];
      for (let start = 0; start < ids.length; start += PER_CALL) {
        const answer = await api('POST', '/api/builder/media/bulk', {action, ids: ids.slice(start, start + PER_CALL), ...extra});
        done += answer.done;
        refused.push(...answer.refused);
      }
    }
  } catch (error) {
    show(summary, error.message, 'error');
    return false;
  }
  const lines = refused.map((r) => el('li', {}, `${names.get(r.id) || r.id}: ${why(r)}`));
  summary.replaceChildren(
    el('p', {class: `message ${refused.length ? 'warning' : 'ok'}`}, `${verb} ${done} image(s).`
      + (refused.length ? ` ${refused.length} refused:` : '')),
    ...(lines.length ? [el('ul', {class: 'refused'}, ...lines)] : []));
  return true;
}
