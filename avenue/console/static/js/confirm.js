// The console's one way to ask "are you sure?" before something that cannot be undone from the
// same screen (a delete, a revoked link): a modal <dialog> of the page's own, not the browser's
// confirm(). The browser's blocks every script of the page while it is up, cannot be labelled
// or styled, and lets a user tick "don't let this page ask again", after which every later
// confirm() answers no without asking: the delete buttons would silently do nothing.
//
// showModal() makes the rest of the page inert and Esc answer no; Tab goes round inside it
// (focus.js); the safe answer has the focus first, so Enter alone never deletes; on closing,
// the browser gives the focus back to what had it (the button that asked).
import {el} from './api.js';
import {wrapTab} from './focus.js';

let dialog = null;

function made() {
  if (dialog) return dialog;
  dialog = el('dialog', {id: 'confirm-dialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text'},
    el('form', {method: 'dialog'},
      el('h2', {id: 'confirm-title'}),
      el('p', {id: 'confirm-text'}),
      el('div', {class: 'row'},
        el('button', {value: 'no', id: 'confirm-no', class: 'secondary', autofocus: true}),
        el('button', {value: 'yes', id: 'confirm-yes', class: 'danger'}))));
  dialog.addEventListener('keydown', (event) => wrapTab(dialog, event));
  document.body.append(dialog);
  return dialog;
}

// Ask `title` (the question), `text` (what follows from yes); `yes` and `no` label the buttons.
// Resolves true only when the yes button was pressed (Esc, no, or anything else: false).
export function confirmAction({title, text, yes, no = 'Cancel'}) {
  const asking = made();
  asking.querySelector('#confirm-title').textContent = title;
  asking.querySelector('#confirm-text').textContent = text;
  asking.querySelector('#confirm-yes').textContent = yes;
  asking.querySelector('#confirm-no').textContent = no;
  asking.returnValue = '';
  return new Promise((resolve) => {
    asking.addEventListener('close', () => resolve(asking.returnValue === 'yes'), {once: true});
    asking.showModal();
  });
}
