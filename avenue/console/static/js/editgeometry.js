// The image editor's geometry as pure functions (no DOM): boxes and points are fractions 0..1
// of the picture shown, as the editing API counts them (docs/api.md, "Editing"). The editor
// (editor.js) draws with them; tests/unit/test_edit_geometry.py runs them under node.

// The aspect buttons: width over height in pixels (null: free).
export const RATIOS = [
  {label: 'Free', ratio: null},
  {label: '1:1', ratio: 1},
  {label: '4:5', ratio: 4 / 5},
  {label: '3:2', ratio: 3 / 2},
  {label: '16:9', ratio: 16 / 9},
  {label: '1.91:1 (og)', ratio: 1.91},
];

// The API's limit: a crop at least 16 pixels of the source on each side.
export const MIN_PIXELS = 16;
// Names of named crops, as the API takes them.
export const CROP_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
export const FULL = Object.freeze({x: 0, y: 0, width: 1, height: 1});
export const IDENTITY = Object.freeze({rotate: 0, flip_horizontal: false, flip_vertical: false, crop: null});

const EPSILON = 1e-6;
const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
// Four decimals: a tenth of a pixel at 10,000 px, and numbers that read well in the API.
export const round = (value) => Math.round(value * 10000) / 10000;

export function roundBox(box) {
  return {x: round(box.x), y: round(box.y), width: round(box.width), height: round(box.height)};
}

// The picture's size in pixels after a rotation by `rotate` degrees (90 and 270 swap the sides).
export function turnedSize(size, rotate) {
  return rotate % 180 ? {width: size.height, height: size.width} : {width: size.width, height: size.height};
}

// The smallest box, as fractions of a picture of `size` pixels.
export function minimum(size) {
  return {width: Math.min(1, MIN_PIXELS / size.width), height: Math.min(1, MIN_PIXELS / size.height)};
}

// `box` kept inside the picture and at least the minimum size, its size kept when it can be.
export function clampBox(box, size) {
  const least = minimum(size);
  const width = clamp(box.width, least.width, 1);
  const height = clamp(box.height, least.height, 1);
  return {x: clamp(box.x, 0, 1 - width), y: clamp(box.y, 0, 1 - height), width, height};
}

// The largest box of `ratio` (pixels wide over high) inside `within`, centred on it: what an
// aspect button makes of the current box.
export function fitRatio(within, ratio, size) {
  if (!ratio) return clampBox(within, size);
  const pixelsWide = within.width * size.width;
  const pixelsHigh = within.height * size.height;
  let width = pixelsWide;
  let height = width / ratio;
  if (height > pixelsHigh) {
    height = pixelsHigh;
    width = height * ratio;
  }
  const box = {width: width / size.width, height: height / size.height};
  box.x = within.x + (within.width - box.width) / 2;
  box.y = within.y + (within.height - box.height) / 2;
  return clampBox(box, size);
}

// `box` moved by (dx, dy), its size unchanged, stopping at the picture's edges.
export function moveBox(box, dx, dy) {
  return {...box, x: clamp(box.x + dx, 0, 1 - box.width), y: clamp(box.y + dy, 0, 1 - box.height)};
}

// `box` with its corner `corner` ("nw", "ne", "sw" or "se") dragged to `point`, the opposite
// corner fixed; with a ratio the height follows the width (or the width the height, whichever
// the picture's edge stops first).
export function dragCorner(box, corner, point, ratio, size) {
  const least = minimum(size);
  const west = corner.includes('w');
  const north = corner.includes('n');
  const fixedX = west ? box.x + box.width : box.x;
  const fixedY = north ? box.y + box.height : box.y;
  const roomX = west ? fixedX : 1 - fixedX;
  const roomY = north ? fixedY : 1 - fixedY;
  let width = clamp(west ? fixedX - point.x : point.x - fixedX, least.width, roomX);
  let height = clamp(north ? fixedY - point.y : point.y - fixedY, least.height, roomY);
  if (ratio) {
    height = (width * size.width) / ratio / size.height;
    if (height > roomY) {
      height = roomY;
      width = (height * size.height * ratio) / size.width;
    }
  }
  return {x: west ? fixedX - width : fixedX, y: north ? fixedY - height : fixedY, width, height};
}

// The keyboard: arrows move the box by `step` of the picture; with Shift they resize it from
// its top left corner (Right and Down grow it, Left and Up shrink it), keeping the ratio.
export function nudge(box, key, shift, ratio, size, step = 0.01) {
  const moves = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
  const [dx, dy] = moves[key] || [0, 0];
  if (!dx && !dy) return box;
  if (!shift) return moveBox(box, dx * step, dy * step);
  if (ratio && dy) {
    // Taller or shorter by a step: the width follows from the ratio.
    const height = box.height + dy * step;
    const width = (height * size.height * ratio) / size.width;
    return dragCorner(box, 'se', {x: box.x + width, y: box.y + height}, ratio, size);
  }
  return dragCorner(box, 'se', {x: box.x + box.width + dx * step, y: box.y + box.height + dy * step}, ratio, size);
}

// A point of the picture after the picture turns a quarter clockwise (dir 1) or anticlockwise (-1).
export function turnPoint(point, dir) {
  return dir > 0 ? {x: 1 - point.y, y: point.x} : {x: point.y, y: 1 - point.x};
}

export function turnBox(box, dir) {
  return dir > 0
    ? {x: 1 - box.y - box.height, y: box.x, width: box.height, height: box.width}
    : {x: box.y, y: 1 - box.x - box.width, width: box.height, height: box.width};
}

// A point (box) of the picture after it is mirrored left to right ("horizontal") or top to bottom.
export function flipPoint(point, axis) {
  return axis === 'horizontal' ? {x: 1 - point.x, y: point.y} : {x: point.x, y: 1 - point.y};
}

export function flipBox(box, axis) {
  return axis === 'horizontal' ? {...box, x: 1 - box.x - box.width} : {...box, y: 1 - box.y - box.height};
}

// The edits after turning the picture as shown: the API applies rotate, then flip, to the
// original, so a quarter turn after one flip is the other flip after the turn (turning a
// mirrored picture clockwise = mirroring the clockwise-turned one top to bottom).
export function turnEdits(edits, dir) {
  const mirrored = edits.flip_horizontal !== edits.flip_vertical;
  return {
    ...edits,
    rotate: (((edits.rotate + dir * 90) % 360) + 360) % 360,
    flip_horizontal: mirrored ? edits.flip_vertical : edits.flip_horizontal,
    flip_vertical: mirrored ? edits.flip_horizontal : edits.flip_vertical,
    crop: edits.crop && turnBox(edits.crop, dir),
  };
}

export function flipEdits(edits, axis) {
  const key = axis === 'horizontal' ? 'flip_horizontal' : 'flip_vertical';
  return {...edits, [key]: !edits[key], crop: edits.crop && flipBox(edits.crop, axis)};
}

// Where a point of the original (as oriented) lands in the rotated and flipped picture.
export function orientPoint(point, edits) {
  let shown = point;
  for (let turned = 0; turned < edits.rotate; turned += 90) shown = turnPoint(shown, 1);
  if (edits.flip_horizontal) shown = flipPoint(shown, 'horizontal');
  if (edits.flip_vertical) shown = flipPoint(shown, 'vertical');
  return shown;
}

// A point of the whole (rotated and flipped) picture as a point of its crop, clamped into it:
// the focal point as the API keeps it.
export function intoCrop(point, crop) {
  const box = crop || FULL;
  return {x: round(clamp((point.x - box.x) / box.width, 0, 1)), y: round(clamp((point.y - box.y) / box.height, 0, 1))};
}

export function outOfCrop(point, crop) {
  const box = crop || FULL;
  return {x: box.x + point.x * box.width, y: box.y + point.y * box.height};
}

export function isFull(box) {
  return !box || (box.x < EPSILON && box.y < EPSILON && box.width > 1 - EPSILON && box.height > 1 - EPSILON);
}

// The edits as the API takes them: a whole-picture crop is no crop, numbers rounded; null for none.
export function normalise(edits) {
  if (!edits) return null;
  const crop = isFull(edits.crop) ? null : roundBox(edits.crop);
  const rotate = edits.rotate || 0;
  const flipH = Boolean(edits.flip_horizontal);
  const flipV = Boolean(edits.flip_vertical);
  if (!rotate && !flipH && !flipV && !crop) return null;
  return {rotate, flip_horizontal: flipH, flip_vertical: flipV, crop};
}

export function sameEdits(a, b) {
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

// The box's own aspect in pixels, for the words under the picture ("1200 × 800 px").
export function boxPixels(box, size) {
  return {width: Math.round(box.width * size.width), height: Math.round(box.height * size.height)};
}
