// A library card's delivery chart: one bar per UTC day of the last 30 (answers served), drawn as
// a small SVG from GET /api/builder/media/<id>/deliveries. The bars are hidden from screen
// readers; the numbers are text: a caption sums them up and a table lists every day (opened
// from "Answers per day"). Kept apart from library.js, which only adds the button.
import {api, el, formatBytes, formatDate} from './api.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 180;
const HEIGHT = 40;

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

// "212 answers (1.2 MB) in 30 days, most on 2026-11-20 (40); last served …"
export function summary(answer) {
  const days = answer.days;
  const total = days.reduce((sum, day) => sum + day.requests, 0);
  const bytes = days.reduce((sum, day) => sum + day.bytes, 0);
  const span = `${days.length} day${days.length === 1 ? '' : 's'}`;
  const last = answer.last_served ? `last served ${formatDate(answer.last_served)}` : 'never served';
  if (!total) return `No answers in the last ${span}; ${last}.`;
  const busiest = days.reduce((best, day) => (day.requests > best.requests ? day : best), days[0]);
  return `${total.toLocaleString()} answer${total === 1 ? '' : 's'} (${formatBytes(bytes)}) in the last ${span}, ` +
    `most on ${busiest.day} (${busiest.requests.toLocaleString()}); ${last}.`;
}

export function chartOf(answer, filename) {
  const days = answer.days;
  const most = Math.max(1, ...days.map((day) => day.requests));
  const step = WIDTH / Math.max(1, days.length);
  const bars = svg('svg', {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT,
    'aria-hidden': 'true', focusable: 'false', class: 'spark'});
  bars.append(svg('line', {x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5, class: 'spark-axis'}));
  days.forEach((day, index) => {
    // A day with answers is at least 2 px tall, so one answer among thousands still shows.
    const tall = day.requests ? Math.max(2, (day.requests / most) * (HEIGHT - 2)) : 0;
    bars.append(svg('rect', {x: (index * step + 0.5).toFixed(1), y: (HEIGHT - tall).toFixed(1),
      width: Math.max(1, step - 1).toFixed(1), height: tall.toFixed(1), class: 'spark-bar'}));
  });
  const table = el('table', {class: 'spark-table'},
    el('caption', {}, `Answers per day for ${filename}`),
    el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Day'), el('th', {scope: 'col'}, 'Answers'),
      el('th', {scope: 'col'}, 'Bytes'))),
    el('tbody', {}, ...days.map((day) => el('tr', {},
      el('th', {scope: 'row'}, day.day), el('td', {}, day.requests.toLocaleString()),
      el('td', {}, formatBytes(day.bytes))))));
  return el('figure', {class: 'delivery-spark', dataset: {days: String(days.length)}},
    bars,
    el('figcaption', {}, summary(answer)),
    el('details', {}, el('summary', {}, 'Answers per day'), table));
}

export async function deliveryChart(mediaId, filename) {
  return chartOf(await api('GET', `/api/builder/media/${mediaId}/deliveries`), filename);
}
