// Audit log page (/audit, auditors and admins): every replay, download, watch, kill, hold,
// release and expiry, newest first, optionally for one session (kept in the query string),
// with "Load more".

import './audit.css';
import { api, describeError, query } from './lib/api.js';
import { clearError, el, showError } from './lib/dom.js';
import { formatTime } from './lib/format.js';
import { bindFilters } from './lib/filters.js';
import { initHeader } from './lib/header.js';

const PAGE_SIZE = 100;

const form = document.getElementById('audit-filters');
const tbody = document.querySelector('#audit tbody');
const more = document.getElementById('more');

const state = {
  session: '', // the session filter, '' for all
  entries: [],
  full: false, // the last page was full: there may be more
  generation: 0,
};

/** Fetches the page of entries older than `before` (an entry id), newest first. */
function fetchPage(before) {
  return api('/api/v1/audit' + query({ session: state.session, before, limit: PAGE_SIZE }));
}

async function reload() {
  const generation = ++state.generation;
  more.hidden = true;
  try {
    const entries = await fetchPage();
    if (generation !== state.generation) return;
    clearError();
    state.entries = entries;
    state.full = entries.length === PAGE_SIZE;
  } catch (error) {
    if (generation !== state.generation) return;
    showError(describeError(error, 'read the audit log'));
    state.entries = [];
    state.full = false;
  }
  render();
}

async function loadMore() {
  const generation = state.generation;
  more.disabled = true;
  try {
    const entries = await fetchPage(state.entries.at(-1)?.id);
    if (generation !== state.generation) return;
    state.entries = state.entries.concat(entries);
    state.full = entries.length === PAGE_SIZE;
    render();
  } catch (error) {
    showError(describeError(error, 'read more of the audit log'));
  } finally {
    more.disabled = false;
  }
}

function render() {
  if (state.entries.length === 0) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 7, className: 'empty' }, 'No audit entries match')));
  } else {
    tbody.replaceChildren(...state.entries.map(renderEntry));
  }
  more.hidden = !state.full;
}

/** One audit entry as a table row. */
function renderEntry(entry) {
  const session = entry.session_id
    ? el('a', { href: `/sessions/${entry.session_id}`, className: 'mono' }, entry.session_id)
    : '—';
  return el(
    'tr',
    { dataset: { auditId: entry.id, action: entry.action } },
    el('td', {}, el('time', { datetime: new Date(entry.at).toISOString() }, formatTime(entry.at))),
    el('td', {}, entry.actor),
    el('td', {}, entry.role),
    el('td', {}, el('span', { className: `action action-${entry.action}` }, entry.action)),
    el('td', {}, session),
    el('td', { className: 'mono' }, entry.source_addr),
    el('td', { className: 'wrap' }, entry.detail ?? '—'),
  );
}

bindFilters(form, '/audit', {
  fromLocation: () => ({ session: new URLSearchParams(location.search).get('session') || '' }),
  read: () => ({ session: form.elements.session.value.trim() }),
  fill: (filters) => {
    form.elements.session.value = filters.session;
  },
  changed: (filters) => {
    state.session = filters.session;
    reload();
  },
});

more.addEventListener('click', loadMore);

async function main() {
  state.session = new URLSearchParams(location.search).get('session') || '';
  form.elements.session.value = state.session;
  try {
    await initHeader('audit');
  } catch (error) {
    showError(describeError(error, 'find out who is signed in'));
    return;
  }
  await reload();
}

main();
