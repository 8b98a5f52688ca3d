// Ops dashboard (ops, admins): storage cards with quota levels, the safety verdict and the
// lists behind it, alerts to acknowledge, and the storage history charts (uPlot).
import {api, el, formatBytes, formatDate, newest, pageMessage, show} from './api.js';
import {databaseFacts, percentText, timeRange, uploadBars, uploadsSummary} from './opsformat.js';

const cards = document.getElementById('cards');
const verdict = document.getElementById('verdict');
const verdictLists = document.getElementById('verdict-lists');
const reportAge = document.getElementById('report-age');
const alertsList = document.getElementById('alerts');
const alertsStatus = document.getElementById('alerts-status');
const historyStatus = document.getElementById('history-status');
const LEVEL_WORDS = {ok: 'OK', warning: 'Warning', critical: 'Critical', emergency: 'Emergency'};
const charts = {};
// The alert thresholds in force (AVENUE_ALERT_THRESHOLDS), fetched with the alerts: the quota
// card is coloured by the same levels the alerts use.
const alertsAnswer = api('GET', '/api/admin/alerts');

function levelOf(percent, thresholds) {
  let level = 'ok';
  for (const name of ['warning', 'critical', 'emergency']) {
    if (percent !== null && percent !== undefined && percent >= thresholds[name]) level = name;
  }
  return level;
}

function bar(fraction, level, label) {
  const percent = Math.max(0, Math.min(100, fraction * 100));
  return el('div', {class: `bar level-${level}`, role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100',
    'aria-valuenow': percent.toFixed(1), 'aria-label': label},
  el('span', {style: null, class: 'fill', dataset: {percent: percent.toFixed(1)}}));
}

function setBarWidths() {
  // Widths set from script, not inline style attributes: the CSP allows no inline styles.
  for (const fill of document.querySelectorAll('.bar .fill')) fill.style.width = `${fill.dataset.percent}%`;
}

function levelBadge(level) {
  return el('span', {class: `badge level-${level}`}, LEVEL_WORDS[level] || level);
}

function renderStorage(storage, thresholds) {
  const quota = storage.quota || {};
  const level = thresholds ? levelOf(quota.percent, thresholds) : (quota.level || 'ok');
  const total = storage.gridfs_bytes || 0;
  const scale = quota.bytes || total || 1;
  const bucketCards = Object.values(storage.buckets || {}).map((bucket) => el('article', {class: 'card stat'},
    el('h3', {}, `Bucket “${bucket.alias}”`),
    el('p', {class: 'big'}, formatBytes(bucket.bytes)),
    bar(bucket.bytes / scale, quota.bytes ? level : 'ok',
      `${bucket.alias}: ${formatBytes(bucket.bytes)} of ${quota.bytes ? 'the quota' : 'all stored bytes'}`),
    el('p', {class: 'muted'}, `${bucket.originals} image(s), ${bucket.files} file(s) with variants, ${bucket.chunks} chunk(s)`),
    el('p', {class: 'muted'}, `Newest upload: ${formatDate(bucket.newest_upload)}`)));
  const db = databaseFacts(storage);
  const dbCard = el('article', {class: 'card stat'},
    el('h3', {}, 'Database'),
    el('p', {class: 'big'}, db.big),
    // Against the quota only: without one there is nothing the database's size is a share of.
    quota.bytes && db.bytes !== null ? bar(db.bytes / quota.bytes, level, `Database: ${db.big} of the quota`) : null,
    ...db.lines.map((line) => el('p', {class: 'muted'}, line)),
    el('p', {class: 'muted'}, `${storage.database || ''} · ${storage.backend || ''}${storage.server_version ? ` ${storage.server_version}` : ''}`),
    // A mongod below what production runs on (docs/production.md "MongoDB"), in the report's words.
    storage.server_warning ? el('p', {class: 'server-warning'},
      el('span', {class: 'badge level-critical'}, 'Upgrade MongoDB'), ' ', storage.server_warning) : null,
    el('p', {}, el('span', {class: `badge level-${db.chunksOk ? 'ok' : 'critical'}`}, db.chunkLine)),
    el('p', {}, storage.persistent === false
      ? el('span', {class: 'badge level-emergency'}, 'Not persistent: nothing survives a restart')
      : el('span', {class: 'badge level-ok'}, 'Persistent')));
  const quotaCard = el('article', {class: `card stat quota level-${level}`},
    el('h3', {}, 'Quota'),
    quota.bytes
      ? [el('p', {class: 'big'}, percentText(quota.percent), ' ', levelBadge(level)),
        bar(quota.percent / 100, level, `Quota used: ${percentText(quota.percent)}, level ${level}`),
        el('p', {class: 'muted'}, `${formatBytes(quota.used_bytes)} of ${formatBytes(quota.bytes)} (${quota.used_source})`),
        thresholds ? el('p', {class: 'muted'}, `Levels at ${thresholds.warning} / ${thresholds.critical} / ${thresholds.emergency} %`) : null]
      : [el('p', {class: 'big'}, formatBytes(quota.used_bytes)),
        el('p', {class: 'muted'}, 'No quota configured (AVENUE_STORAGE_QUOTA_BYTES).')]);
  const renditions = renditionsCard(storage.renditions);
  cards.replaceChildren(quotaCard, dbCard, ...bucketCards, ...(renditions ? [renditions] : []));
  setBarWidths();
}

// Renditions on request: derived files kept under their own byte budget (evicted past it,
// rendered again on their next request), so a full budget is normal, never an alert.
function renditionsCard(renditions) {
  if (!renditions) return null;
  const last = renditions.last_eviction;
  return el('article', {class: 'card stat renditions'},
    el('h3', {}, 'Renditions on request'),
    el('p', {class: 'big'}, formatBytes(renditions.bytes)),
    renditions.budget_bytes
      ? [bar(renditions.bytes / renditions.budget_bytes, 'ok',
        `Renditions: ${renditions.percent} % of their budget`),
      el('p', {class: 'muted'}, `${renditions.percent} % of the ${formatBytes(renditions.budget_bytes)} budget`)]
      : el('p', {class: 'muted'}, 'No budget (AVENUE_RENDITION_BUDGET_BYTES is 0): never evicted.'),
    el('p', {class: 'muted'}, `${renditions.files} rendition(s)`),
    el('p', {class: 'muted'}, last
      ? `Last eviction: ${formatDate(last.at)}, ${last.renditions} rendition(s), ${formatBytes(last.bytes)}`
      : 'No eviction yet'));
}

function describe(item) {
  if (typeof item !== 'object' || item === null) return String(item);
  return Object.entries(item).map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(', ') : value}`).join(' · ');
}

function renderSafety(products) {
  const lists = [
    ['missing_files', 'Missing files (a product shows a broken photo)'],
    ['local_filesystem', 'References to the local disk'],
    ['external', 'References outside storage'],
    ['orphans', 'Orphans (stored, referenced by no product)'],
    ['missing_variants', 'Images missing variants'],
  ];
  // safe is null until the first background sweep has listed the problems (the counts are
  // always current; the lists come from the sweep, whose age is shown with them).
  const sweep = products.sweep || {};
  const badge = products.safe === true
    ? el('span', {class: 'badge level-ok'}, 'Yes: every product photo is stored and served')
    : products.safe === false
      ? el('span', {class: 'badge level-critical'}, 'No: some product photos need attention')
      : el('span', {class: 'badge level-warning'}, 'Not checked yet: the first check of every file is running');
  verdict.replaceChildren(badge);
  if (sweep.running) verdict.append(' (a check is running now.)');
  else if (sweep.age_seconds !== null && sweep.age_seconds !== undefined) {
    verdict.append(` (files last checked ${Math.round(sweep.age_seconds / 60)} min ago.)`);
  }
  verdict.append(` ${products.products.total} product(s), ${products.references.total} photo reference(s), `
    + `${products.temp_images.pending} temp image(s) pending.`);
  verdictLists.replaceChildren(...lists.map(([key, label]) => {
    const block = products[key] || {count: 0, items: []};
    return el('details', {class: 'listing', open: block.count > 0 ? true : null},
      el('summary', {}, `${label}: ${block.count}`),
      block.count
        ? el('ul', {}, block.items.map((item) => el('li', {}, describe(item))),
          block.truncated ? el('li', {class: 'muted'}, `… and ${block.count - block.items.length} more`) : null)
        : el('p', {class: 'muted'}, 'None.'));
  }));
}

async function loadReports(refresh) {
  reportAge.textContent = refresh ? 'Recomputing the reports…' : 'Loading…';
  const query = refresh ? '?refresh=1' : '';
  try {
    const [storage, products] = await Promise.all([
      api('GET', `/api/shop/debug/storage-status${query}`),
      api('GET', `/api/shop/debug/products-status${query}`),
    ]);
    const thresholds = await alertsAnswer.then((answer) => answer.thresholds, () => null);
    renderStorage(storage, thresholds);
    renderSafety(products);
    const meta = storage.report || {};
    const checking = storage.sweep && storage.sweep.running ? ' (files being checked in the background)' : '';
    reportAge.textContent = `Reports from ${formatDate(meta.generated_at)}${checking}.`;
    // A report the database was too busy to recount in time is the worker's last one
    // (report.stale, docs/operations.md): say so and how old, rather than pass it off as now.
    const held = [['Storage', storage], ['Products', products]].filter(([, body]) => body.report && body.report.stale);
    if (held.length) {
      reportAge.append(' ', el('span', {class: 'badge level-warning stale-report'},
        held.map(([name, body]) => `${name}: last counts, ${Math.round(body.report.age_seconds)} s old`).join(' · ')),
      ' The database was busy; fresh counts are being read. Refresh in a moment.');
    }
  } catch (error) {
    reportAge.textContent = '';
    pageMessage(error.message);
  }
}

function alertItem(alert) {
  const status = el('span', {class: 'message', role: 'status', 'aria-live': 'polite', hidden: true});
  const when = `${formatDate(alert.at)}`;
  const action = alert.acknowledged
    ? el('span', {class: 'muted'}, `Acknowledged by ${alert.acknowledged_by} on ${formatDate(alert.acknowledged_at)}`)
    : el('button', {type: 'button', 'aria-label': `Acknowledge the ${alert.level} ${alert.kind} alert of ${when}`,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          const updated = await api('POST', `/api/admin/alerts/${alert.id}/ack`);
          node.replaceWith(alertItem(updated));
          countAlerts();
        } catch (error) {
          event.target.disabled = false;
          show(status, error.message, 'error');
        }
      }}, 'Acknowledge');
  const node = el('li', {class: `alert level-${alert.level}${alert.acknowledged ? ' acknowledged' : ''}`},
    levelBadge(alert.level), el('span', {class: 'when'}, when), el('p', {}, alert.message),
    alert.notified ? el('p', {class: 'muted'}, alert.notified.ok ? 'Sent to the webhook.' : 'The webhook did not accept it.') : null,
    action, status);
  return node;
}

function countAlerts() {
  const all = alertsList.querySelectorAll('.alert').length;
  const open = alertsList.querySelectorAll('.alert:not(.acknowledged)').length;
  alertsStatus.textContent = all ? `${open} open, ${all} recorded.` : 'No alerts recorded.';
}

async function loadAlerts() {
  try {
    const answer = await alertsAnswer;
    alertsList.replaceChildren(...answer.items.map(alertItem));
    countAlerts();
  } catch (error) {
    show(alertsStatus, error.message, 'error');
  }
}

function chart(key, target, options, data) {
  charts[key]?.destroy();
  const width = Math.max(280, target.clientWidth || 600);
  // The time span uPlot drew, readable from the page (the axis itself is canvas pixels).
  const drawn = (u) => {
    target.dataset.timeFrom = new Date(u.scales.x.min * 1000).toISOString();
    target.dataset.timeTo = new Date(u.scales.x.max * 1000).toISOString();
  };
  charts[key] = new window.uPlot({width, height: 220, ...options, hooks: {draw: [drawn]}}, data, target);
}

function drawHistory(series) {
  const points = series.points;
  const growthTarget = document.getElementById('growth-chart');
  const uploadsTarget = document.getElementById('uploads-chart');
  const times = points.map((p) => Date.parse(p.at) / 1000);
  const bytesAxis = {values: (u, ticks) => ticks.map((v) => formatBytes(v)), size: 80};
  const bytesValue = (u, v) => (v === null || v === undefined ? '—' : formatBytes(v));
  const fromZero = {range: (u, min, max) => [0, Math.max(1, max) * 1.05]};
  const hasQuota = points.some((p) => p.quota_bytes);
  const growthSeries = [{}, {label: 'Used', stroke: '#1d5fbf', width: 2, fill: 'rgba(29,95,191,0.12)', value: bytesValue},
    {label: 'GridFS files', stroke: '#2e7d32', width: 2, value: bytesValue}];
  const growthData = [times, points.map((p) => p.used_bytes), points.map((p) => p.gridfs_bytes)];
  if (hasQuota) {
    growthSeries.push({label: 'Quota', stroke: '#b3261e', dash: [6, 4], width: 1, value: bytesValue});
    growthData.push(points.map((p) => p.quota_bytes || null));
  }
  // The chosen range, not the samples' own span (one sample would stretch to years).
  const range = timeRange(series);
  chart('growth', growthTarget, {series: growthSeries, axes: [{}, bytesAxis],
    scales: {x: {time: true, range: () => range}, y: fromZero}}, growthData);
  const first = points[0];
  const last = points[points.length - 1];
  document.getElementById('growth-summary').textContent = points.length
    ? `${points.length} sample(s); storage went from ${formatBytes(first.used_bytes)} to ${formatBytes(last.used_bytes)}.`
    : 'No samples recorded in this range yet.';
  const bars = uploadBars(series);
  document.getElementById('bar-unit').textContent = series.bar_seconds >= 86400 ? 'day' : 'hour';
  chart('uploads', uploadsTarget, {
    series: [{}, {label: 'Uploads', fill: 'rgba(29,95,191,0.55)', stroke: '#1d5fbf',
      paths: window.uPlot.paths.bars({size: [0.7, 60]}), points: {show: false}}],
    scales: {x: {time: true, range: () => bars.range}, y: fromZero}, axes: [{}, {size: 50}],
  }, [bars.times, bars.counts]);
  document.getElementById('uploads-summary').textContent = uploadsSummary(series);
}

const askingHistory = newest();  // the range chosen last is drawn, whichever answer comes last

async function loadHistory() {
  const range = document.querySelector('input[name="range"]:checked').value;
  const current = askingHistory();
  historyStatus.textContent = 'Loading the history…';
  try {
    const series = await api('GET', `/api/admin/history?range=${range}`);
    if (!current()) return;
    drawHistory(series);
    historyStatus.textContent = `From ${formatDate(series.from)} to ${formatDate(series.to)}.`;
  } catch (error) {
    if (current()) show(historyStatus, error.message, 'error');
  }
}

document.getElementById('refresh').addEventListener('click', () => loadReports(true));
document.getElementById('range').addEventListener('change', loadHistory);
let resizing = null;
window.addEventListener('resize', () => {
  clearTimeout(resizing);
  resizing = setTimeout(loadHistory, 200);
});

loadReports(false);
loadAlerts();
loadHistory();
