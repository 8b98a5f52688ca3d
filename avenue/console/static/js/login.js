// The login form: POST /api/auth/login, then the page the user came for.
import {api, rememberCsrf, show} from './api.js';

const form = document.getElementById('login-form');
const status = document.getElementById('login-status');

function nextPage() {
  const next = new URLSearchParams(location.search).get('next') || '';
  // Only a console path of this site: never an open redirect.
  return next.startsWith('/console/') && !next.startsWith('//') ? next : '/console/';
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = form.email.value.trim();
  const password = form.password.value;
  if (!email || !password) {
    show(status, 'Enter your email and password.', 'error');
    return;
  }
  show(status, 'Logging in…');
  try {
    const answer = await api('POST', '/api/auth/login', {email, password});
    rememberCsrf(answer.csrf_token);
    location.assign(nextPage());
  } catch (error) {
    show(status, error.message, 'error');
    form.password.select();
  }
});
