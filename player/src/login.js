// Sign-in page (/login): trades a token for the session cookie, then goes back to the page
// that sent the user here (`?next=`), if that is a path on this site, else to /sessions.
// The token travels only in the POST body, never in a URL.

import './login.css';
import { describeError, request } from './lib/api.js';
import { clearError, showError } from './lib/dom.js';
import { sameOriginPath } from './lib/next.js';

/** `next` from the query if it is a path on this site (lib/next.js), else /sessions. */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next') || '';
  return sameOriginPath(next, location.origin) ?? '/sessions';
}

const form = document.getElementById('login');
const input = document.getElementById('token');
const button = form.querySelector('button[type="submit"]');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearError();
  const token = input.value.trim();
  if (!token) {
    showError('Enter your token.');
    return;
  }
  button.disabled = true;
  try {
    await request('/api/v1/login', { method: 'POST', body: { token }, noRedirect: true });
    input.value = '';
    location.assign(nextPath());
  } catch (error) {
    showError(describeError(error, 'sign in'));
    input.select();
  } finally {
    button.disabled = false;
  }
});
