// The bulk upload's page side: the panel (overall progress, a live summary, Cancel and Retry
// failed, a row per file), one XHR per file (its upload progress events), and the files of a
// dropped folder. The queue's rules are in upload-queue.js; each file goes by sendForm (api.js).
import {el} from './api.js';
import {FINISHED, UploadQueue, itemText} from './upload-queue.js';

// Every file of a drop, folders walked (webkitGetAsEntry: Chromium, Firefox, Safari), each file
// with its path in the folder as `relativePath`.
export async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items || []].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry())
    .filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const files = [];
  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      file.relativePath = `${prefix}${file.name}`;
      files.push(file);
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {  // readEntries gives a folder's entries a batch (100 in Chromium) at a time
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  }
  for (const entry of entries) await walk(entry, '');
  return files;
}

// The panel, placed before `list` (the page's <ul class="upload-list">). `send(file, progress,
// abort)` sends one file; `onDone(summary)` runs when a run ends (to reload the page's list).
export function bulkPanel(list, {send, onDone = () => {}, onStored = () => {}, concurrency} = {}) {
  const label = el('label', {for: `${list.id}-overall`}, 'Overall progress');
  const overall = el('progress', {id: `${list.id}-overall`, max: '100', value: '0'});
  const summary = el('p', {class: 'upload-summary', role: 'status', 'aria-live': 'polite'});
  const cancel = el('button', {type: 'button', class: 'secondary', hidden: true}, 'Cancel uploads');
  const retry = el('button', {type: 'button', class: 'secondary', hidden: true}, 'Retry failed');
  const problems = el('ul', {class: 'refused-list', 'aria-label': 'Files not stored'});
  const panel = el('div', {class: 'bulk-upload', hidden: true},
    el('div', {class: 'overall'}, label, overall), summary, problems, el('div', {class: 'row small'}, cancel, retry));
  list.before(panel);
  const rows = new Map();  // item → its row's parts
  let lastSpoken = '';

  function row(item) {
    let parts = rows.get(item);
    if (!parts) {
      const bar = el('progress', {max: '100', value: '0', 'aria-label': `Uploading ${item.name}`});
      const status = el('span', {class: 'upload-status'});
      const node = el('li', {}, el('span', {class: 'upload-name'}, item.name), bar, status);
      list.append(node);
      parts = {node, bar, status};
      rows.set(item, parts);
    }
    return parts;
  }

  function draw(item, queue) {
    if (item) {
      const {node, bar, status} = row(item);
      bar.value = Math.round((FINISHED.has(item.state) && item.state !== 'cancelled' ? 1 : item.progress) * 100);
      status.textContent = itemText(item);
      node.className = {stored: 'ok', deduped: 'ok', refused: 'refused', failed: 'refused', skipped: 'skipped'}[item.state] || '';
    }
    const facts = queue.summary();
    overall.value = Math.round(queue.overall() * 100);
    overall.setAttribute('aria-valuetext', `${overall.value} %: ${facts.text}`);
    const busy = facts.counts.pending > 0;
    cancel.hidden = !busy;
    retry.hidden = busy || !(facts.counts.failed || facts.counts.cancelled);
    // The live region speaks when a file finishes and at the end, not on every progress event.
    const spoken = busy ? `Uploading: ${facts.text}` : `Done: ${facts.text}`;
    if (spoken !== lastSpoken && (!item || FINISHED.has(item.state) || !busy || lastSpoken.startsWith('Done:'))) {
      summary.textContent = spoken;
      lastSpoken = spoken;
    }
    if (!busy) problems.replaceChildren(...facts.problems.map((p) => el('li', {}, p.line)));
    if (item && (item.state === 'stored' || item.state === 'deduped')) onStored(item);
  }

  const queue = new UploadQueue({send, onChange: draw, ...(concurrency ? {concurrency} : {})});
  cancel.addEventListener('click', () => queue.cancel());
  retry.addEventListener('click', async () => onDone(await queue.retryFailed()));

  return {
    queue,
    async upload(files) {
      panel.hidden = false;
      if (!queue.running) {  // a new run: the last one's rows and counts go
        queue.items = [];
        rows.clear();
        list.replaceChildren();
        problems.replaceChildren();
        lastSpoken = `Uploading ${files.length} file(s)…`;
        summary.textContent = lastSpoken;
      }
      queue.add(files);
      onDone(await queue.start());
    },
  };
}

// Let `zone` take dropped files and folders: `take(files)` gets them.
export function dropTarget(zone, take) {
  for (const name of ['dragenter', 'dragover']) {
    zone.addEventListener(name, (event) => {
      if (!event.dataTransfer.types.includes('Files')) return;
      event.preventDefault();
      zone.classList.add('over');
    });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const files = await droppedFiles(event.dataTransfer);
    if (files.length) take(files);
  });
}
