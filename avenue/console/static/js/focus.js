// Tab kept inside what covers the page: a modal dialog (the editor, a confirmation) and the
// details panel on a phone. showModal() makes the rest of the page inert, and the panel makes
// what it covers inert, but Tab past the last control would still leave for the browser's own
// toolbar (headless: the page's first link). So Tab past the last stop comes round to the first,
// and Shift+Tab from the first (or from a heading focused by script) to the last.

// What Tab stops on inside `root`, in order: not disabled, not hidden, not taken out.
export function tabbables(root) {
  return [...root.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]')]
    .filter((node) => node.tabIndex >= 0 && !node.disabled && !node.closest('[hidden], [inert]')
      && node.getClientRects().length > 0);
}

// For a keydown in `root`: a Tab at its edge goes round; anything else is left alone.
export function wrapTab(root, event) {
  if (event.key !== 'Tab') return;
  const stops = tabbables(root);
  if (!stops.length) return;
  const at = stops.indexOf(document.activeElement);
  if (event.shiftKey && at <= 0) {
    event.preventDefault();
    stops[stops.length - 1].focus();
  } else if (!event.shiftKey && at === stops.length - 1) {
    event.preventDefault();
    stops[0].focus();
  }
}
