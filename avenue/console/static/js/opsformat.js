// What the ops dashboard writes and where its charts' axes run, as pure functions of the
// API's answers (no DOM): tests/unit/test_ops_format.py runs them under node.
import {formatBytes, formatDate} from './api.js';

// Above this a quota percentage reads "over 999 %": a tiny quota (1 byte) would otherwise
// print an eleven-digit number that says nothing more and runs out of its card.
export const MAX_PERCENT = 999;

export function percentText(percent) {
  if (percent === null || percent === undefined || !Number.isFinite(percent)) return 'not known';
  if (percent > MAX_PERCENT) return `over ${MAX_PERCENT} %`;
  return `${Number(percent.toFixed(1))} %`;
}

// The time axis of the storage chart: the range the user chose (the API's from and to, in
// Unix seconds as uPlot counts), whatever the samples in it; one sample or none included.
export function timeRange(series) {
  return [Date.parse(series.from) / 1000, Date.parse(series.to) / 1000];
}

// The uploads chart: each bar drawn in the middle of its hour or day, the axis from the first
// bar's start to the last one's end (the chosen range, rounded out to whole bars).
export function uploadBars(series) {
  const width = series.bar_seconds;
  const starts = series.uploads.map((bar) => Date.parse(bar.start) / 1000);
  const range = starts.length ? [starts[0], starts[starts.length - 1] + width] : timeRange(series);
  return {times: starts.map((start) => start + width / 2), counts: series.uploads.map((bar) => bar.count), range};
}

export function uploadsSummary(series) {
  const counted = series.uploads.filter((bar) => bar.count !== null && bar.count !== undefined);
  const total = counted.reduce((sum, bar) => sum + bar.count, 0);
  const text = `${total} upload(s) in this range.`;
  if (!series.uploads_counted_since) return `${text} Uploads are counted from this version on; none counted yet.`;
  if (counted.length < series.uploads.length) {
    return `${text} Uploads are counted since ${formatDate(series.uploads_counted_since)}; `
      + 'earlier days show no bar.';
  }
  return text;
}

// The database card: its size as measured (the embedded database's data folder on disk, or
// dbStats), or one sentence saying why it is not; and the chunk indexes, which are always known.
export function databaseFacts(storage) {
  const size = storage.database_size || {};
  const folder = size.data_dir;
  const lines = [];
  let big;
  if (folder && folder.exists) {
    big = formatBytes(folder.bytes_on_disk);
    lines.push(`On disk: ${folder.files} file(s) in ${folder.path}`);
  } else if (size.data_bytes !== null && size.data_bytes !== undefined) {
    big = formatBytes(size.storage_bytes ?? size.data_bytes);
    lines.push(`Data ${formatBytes(size.data_bytes)}, indexes ${formatBytes(size.index_bytes ?? 0)}`
      + (size.storage_bytes !== null && size.storage_bytes !== undefined
        ? `, ${formatBytes(size.storage_bytes)} allocated` : ''));
  } else {
    big = 'Size not measured';
    lines.push(size.unmeasured_because || 'The database did not report its size.');
  }
  const indexes = storage.chunk_indexes || {};
  const aliases = (indexes.missing || []).map((bucket) => storage.buckets?.[bucket]?.alias || bucket);
  const chunkLine = indexes.ok === false
    ? `Chunk index missing in: ${aliases.join(', ')}`
    : 'Chunk indexes: present in every bucket';
  return {big, bytes: folder && folder.exists ? folder.bytes_on_disk : (size.storage_bytes ?? size.data_bytes ?? null),
    lines, chunkLine, chunksOk: indexes.ok !== false};
}
