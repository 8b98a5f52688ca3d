// The focal point picked on a library image's larger picture (the details panel, library.js):
// a click where the subject is sets it; or by keyboard, its marker focused: the arrows move it
// (Shift: ten steps at once), Enter sets it. `setFocal(x, y)` sends it (each 0 to 1, to two
// decimals); `place()` draws the marker again at the image's focal point (after a new answer).
import {el} from './api.js';

export function focalPicker(media, large, helpId, setFocal) {
  const thumb = large.querySelector('img');
  const marker = el('span', {class: 'focal-marker', tabindex: '0', role: 'group', 'aria-describedby': helpId});
  const frame = el('div', {class: 'focal-frame'}, large, marker);
  let point = {...(media.focal_point || {x: 0.5, y: 0.5})};

  // Where the picture is drawn inside the square (object-fit: contain leaves bands). While a new
  // version's picture is still loading the element has no natural size yet: the image's own
  // (the answer's width and height) gives the same bands, so a click then lands where it looks.
  function drawnBox() {
    const box = thumb.getBoundingClientRect();
    const naturalWidth = thumb.naturalWidth || media.width || box.width;
    const naturalHeight = thumb.naturalWidth ? thumb.naturalHeight : (media.height || box.height);
    const scale = Math.min(box.width / naturalWidth, box.height / naturalHeight);
    const width = naturalWidth * scale;
    const height = naturalHeight * scale;
    return {left: (box.width - width) / 2, top: (box.height - height) / 2, width, height, box};
  }
  function placeMarker() {
    const drawn = drawnBox();
    marker.style.left = `${drawn.left + point.x * drawn.width}px`;
    marker.style.top = `${drawn.top + point.y * drawn.height}px`;
    marker.setAttribute('aria-label', `Focal point of ${media.filename}: ${Math.round(point.x * 100)} % across, `
      + `${Math.round(point.y * 100)} % down`);
    marker.dataset.x = String(point.x);
    marker.dataset.y = String(point.y);
  }
  thumb.addEventListener('load', placeMarker);
  placeMarker();  // its name now; its place again once the picture is drawn
  thumb.addEventListener('click', (event) => {
    const drawn = drawnBox();
    const clamp = (v) => Math.min(1, Math.max(0, Math.round(v * 100) / 100));
    setFocal(clamp((event.clientX - drawn.box.left - drawn.left) / drawn.width),
      clamp((event.clientY - drawn.box.top - drawn.top) / drawn.height));
  });
  marker.addEventListener('keydown', (event) => {
    const moves = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    if (event.key === 'Enter') {
      event.preventDefault();
      setFocal(point.x, point.y);
      return;
    }
    if (!moves[event.key]) return;
    event.preventDefault();
    const step = event.shiftKey ? 0.1 : 0.01;
    const [dx, dy] = moves[event.key];
    const clamp = (v) => Math.round(Math.min(1, Math.max(0, v)) * 100) / 100;
    point = {x: clamp(point.x + dx * step), y: clamp(point.y + dy * step)};
    placeMarker();
  });
  return {
    frame,
    place() {
      point = {...(media.focal_point || {x: 0.5, y: 0.5})};
      placeMarker();
    },
  };
}
