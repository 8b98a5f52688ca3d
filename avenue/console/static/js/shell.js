// Every console page: the log-out button.
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
