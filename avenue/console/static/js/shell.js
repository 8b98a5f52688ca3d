// Every console page: the log-out button, and the folds a phone's screens open.
import {api, pageMessage} from './api.js';

const logout = document.getElementById('logout');
if (logout) {
  logout.addEventListener('click', async () => {
    try {
      await api('POST', '/api/auth/logout');
      location.assign('/console/login');
    } catch (error) {
      pageMessage(error.message);
    }
  });
}

// On a phone the library's and the uploads' upload forms are folded behind "Add images…", the
// library's search filters behind "Filters…" (console.css; wider, these buttons are not shown):
// disclosures, each opening and closing what follows it in place, the focus staying on the button.
for (const toggle of document.querySelectorAll('.fold-toggle')) {
  toggle.addEventListener('click', () => {
    toggle.setAttribute('aria-expanded', String(toggle.getAttribute('aria-expanded') !== 'true'));
  });
}
