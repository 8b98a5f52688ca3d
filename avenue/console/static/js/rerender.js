// The ops dashboard's Re-render card: how many variants and renditions are stale, the last run
// started from here and its progress, and (admins) a button starting one bounded run
// (POST /api/admin/rerender: half a core, 500 images at most, resuming where the last stopped).
import {api, formatDate, show} from './api.js';

const stale = document.getElementById('rerender-stale');
const runLine = document.getElementById('rerender-run');
const start = document.getElementById('rerender-start');
const status = document.getElementById('rerender-status');
let polling = null;

function describeRun(run) {
  if (!run) return 'No run started from here yet.';
  const counts = run.counts || {};
  if (run.state === 'running') {
    return `Running since ${formatDate(run.started_at)}: ${run.done} of about ${run.total} files looked at.`;
  }
  if (run.state === 'failed') return `The last run failed (${formatDate(run.finished_at)}): ${run.error}`;
  const more = run.stopped_at_limit ? ' It stopped at its limit: start it again to go on.' : '';
  return `Last run ${formatDate(run.finished_at)}: ${counts.variants_rerendered || 0} variants of ` +
    `${counts.images_rerendered || 0} images re-rendered, ${counts.renditions_removed || 0} stale renditions removed.${more}`;
}

async function load(count) {
  try {
    const answer = await api('GET', `/api/admin/rerender${count ? '?stale=1' : ''}`);
    runLine.textContent = describeRun(answer.run);
    if (answer.stale) {
      stale.textContent = `${answer.stale.variants} stale variants (${answer.stale.images} images), ` +
        `${answer.stale.renditions} stale renditions.`;
    }
    const running = answer.run && answer.run.state === 'running';
    if (start) start.disabled = running;
    clearTimeout(polling);
    if (running) polling = setTimeout(() => load(false), 3000);
    else if (!count && answer.run) load(true);  // just finished: count again
  } catch (error) {
    show(status, error.message, 'error');
  }
}

if (start) {
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      await api('POST', '/api/admin/rerender', {limit: 500, cpu_share: 0.5});
      show(status, 'Started.', 'ok');
      load(false);
    } catch (error) {
      start.disabled = false;
      show(status, error.message, 'error');
    }
  });
}

load(true);
