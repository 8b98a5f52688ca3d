// A photo as one <picture>: AVIF and WebP sources and a JPEG (or PNG) <img> from the image
// object's `renditions` (the width ladder, up to the image's own width), so a grid cell
// fetches the rendition that fits it rather than a fixed variant: the storefront recipe of
// docs/media.md, in the console.
import {consoleMedia, consoleSrcset, el} from './api.js';

const TYPES = {avif: 'image/avif', webp: 'image/webp'};

// `sizes="auto"` lets the browser use the width the grid gives the image (lazy images only,
// Chromium 126+); browsers without it read the fallback after the comma, the widest a cell
// gets at that viewport.
export function gridSizes(fallback) {
  return `auto, ${fallback}`;
}

// Point `picture` (made by `picture()`) at `image`'s renditions: again after a replace or a
// new focal point, whose new version gives new URLs.
export function showImage(pictureNode, image) {
  const img = pictureNode.querySelector('img');
  const renditions = image.renditions;
  const sizes = pictureNode.dataset.sizes;
  pictureNode.querySelectorAll('source').forEach((source) => source.remove());
  if (!renditions) {
    // No width known (never for stored images, but an old reference may lack it): the thumbnail.
    img.removeAttribute('srcset');
    img.removeAttribute('sizes');
    img.src = consoleMedia(image.variants.thumb);
  } else {
    for (const ext of ['avif', 'webp']) {
      img.before(el('source', {type: TYPES[ext], srcset: consoleSrcset(renditions.srcset[ext]), sizes}));
    }
    img.sizes = sizes;
    img.srcset = consoleSrcset(renditions.srcset[renditions.fallback]);
    img.src = consoleMedia(renditions.src);
  }
  // The dominant colour shows while the picture loads (set through the CSSOM: the CSP allows
  // no inline style attributes).
  img.style.backgroundColor = image.color || '';
  watch(pictureNode, img);
  return img;
}

// A rendition is made on its first request, which can take seconds: a picture in view that is
// not drawn after a moment says it is still being prepared (data-state="preparing", whose words
// console.css shows over the dominant colour), and says so when it could not be loaded
// ("failed"); "ready" once drawn. Lazy pictures below the fold are not asked for yet: they say
// nothing until they come into view.
const SAY_AFTER_MS = 400;
const timers = new WeakMap();
const inView = typeof IntersectionObserver === 'undefined' ? null : new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    inView.unobserve(entry.target);
    const img = entry.target;
    const node = img.closest('picture');
    if (!node || node.dataset.state !== 'loading') continue;
    clearTimeout(timers.get(node));
    timers.set(node, setTimeout(() => {
      // Something drawn already (a load event missed under load, or an earlier candidate of
      // the srcset shown while the browser fetches a wider one) is not "being prepared".
      if (node.dataset.state === 'loading') node.dataset.state = img.naturalWidth ? 'ready' : 'preparing';
    }, SAY_AFTER_MS));
  }
});

function watch(pictureNode, img) {
  clearTimeout(timers.get(pictureNode));
  if (img.complete && img.naturalWidth) {
    pictureNode.dataset.state = 'ready';
    return;
  }
  pictureNode.dataset.state = 'loading';
  if (inView) inView.observe(img);
}

function drawn(pictureNode, ok) {
  clearTimeout(timers.get(pictureNode));
  pictureNode.dataset.state = ok ? 'ready' : 'failed';
}

// A lazy <picture> of `image` for a slot `sizes` wide; `attrs` go on its <img>.
export function picture(image, sizes, attrs = {}) {
  const img = el('img', {alt: '', loading: 'lazy', decoding: 'async', ...attrs});
  const node = el('picture', {dataset: {sizes}}, img);
  img.addEventListener('load', () => drawn(node, true));
  img.addEventListener('error', () => drawn(node, false));
  showImage(node, image);
  return node;
}
