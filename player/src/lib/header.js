// The header bar every signed-in page shares: "Entry", links to Sessions, Search, Alerts,
// (for developers and admins) Containers and (for auditors and admins) Audit, who is signed in
// (`#whoami`) and a sign-out button (`#logout`).

import { api, describeError, request } from './api.js';
import { el, showError } from './dom.js';

/** Whether a role may watch live sessions and read the audit log. */
export function seesEveryone(role) {
  return role === 'auditor' || role === 'admin';
}

/** Whether a role may enter containers (auditors never do). */
export function entersContainers(role) {
  return role === 'developer' || role === 'admin';
}

/**
 * Asks the API who is signed in (going to the sign-in page when nobody is), fills the
 * page's `<header id="topbar">` and returns `{user, role}`. `current` names the nav link
 * to mark as the current page ("sessions", "search", "alerts", "containers" or "audit").
 */
export async function initHeader(current) {
  const me = await api('/api/v1/me');
  const bar = document.getElementById('topbar');
  const link = (name, href, label) =>
    el('a', { href, 'aria-current': name === current ? 'page' : null, dataset: { nav: name } }, label);
  const logout = el('button', { id: 'logout', type: 'button', className: 'secondary', onclick: signOut }, 'Sign out');
  bar.replaceChildren(
    el('a', { className: 'brand', href: '/sessions' }, 'Entry'),
    el(
      'nav',
      { 'aria-label': 'Main' },
      link('sessions', '/sessions', 'Sessions'),
      link('search', '/search', 'Search'),
      link('alerts', '/alerts', 'Alerts'),
      entersContainers(me.role) ? link('containers', '/containers', 'Containers') : null,
      seesEveryone(me.role) ? link('audit', '/audit', 'Audit') : null,
    ),
    el('span', { className: 'spacer' }),
    el('span', { id: 'whoami', title: 'Signed in' }, el('strong', {}, me.user), ' ', el('span', { className: 'role' }, me.role)),
    logout,
  );
  return me;
}

/** Ends the session cookie and goes to the sign-in page. */
async function signOut() {
  try {
    await request('/api/v1/logout', { method: 'POST', noRedirect: true });
  } catch (error) {
    // Signed out already (401) is fine; anything else is worth telling.
    if (error.status !== 401) {
      showError(describeError(error, 'sign out'));
      return;
    }
  }
  location.assign('/login');
}
