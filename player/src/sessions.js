// Session list (/sessions): a search box that opens the search page (/search?q=…&kind=…),
// filters kept in the query string, one table row per session, "Load more" for older pages,
// links to replay and watch, and a kill button for admins. While any shown session is live or
// finalising, the table refreshes every 5 seconds.

import './sessions.css';
import { api, describeError, query } from './lib/api.js';
import { clearError, el, showError, showNotice } from './lib/dom.js';
import { formatBytes, formatDuration, formatTime, fromDatetimeLocal, sessionDuration, toDatetimeLocal } from './lib/format.js';
import { initHeader, seesEveryone } from './lib/header.js';

const PAGE_SIZE = 50;
const MAX_LIMIT = 1000; // the API's largest page
const REFRESH_MS = 5000;
const FILTERS = ['user', 'container', 'status', 'since', 'until'];

const form = document.getElementById('filters');
const searchForm = document.getElementById('search');
const tbody = document.querySelector('#sessions tbody');
const more = document.getElementById('more');
const dialog = document.getElementById('kill-dialog');

const state = {
  me: null,
  filters: {}, // as sent to the API: strings, since/until in unix ms
  rows: [], // every loaded row, newest first
  next: null, // cursor for the next page, or null on the last
  generation: 0, // bumped when the filters change, so late answers for old ones are dropped
  timer: null,
  killing: null, // the row the kill dialog is about
};

/** The filters in the page's query string (only filters: nothing secret goes there). */
function filtersFromLocation() {
  const search = new URLSearchParams(location.search);
  return Object.fromEntries(FILTERS.map((name) => [name, search.get(name) || '']));
}

/** Shows filters in the form (times as local date-times). */
function fillForm(filters) {
  for (const name of FILTERS) {
    const value = filters[name] || '';
    form.elements[name].value = name === 'since' || name === 'until' ? toDatetimeLocal(value) : value;
  }
}

/** Reads the form into API filters. */
function readForm() {
  const filters = {};
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    filters[name] = name === 'since' || name === 'until' ? fromDatetimeLocal(value) : value;
  }
  return filters;
}

/** Fetches one page of sessions for the current filters. */
function fetchPage(before, limit = PAGE_SIZE) {
  return api('/api/v1/sessions' + query({ ...state.filters, before, limit }));
}

/** Loads the first page for the current filters, replacing the table. */
async function reload() {
  const generation = ++state.generation;
  stopRefresh();
  more.hidden = true;
  try {
    const page = await fetchPage();
    if (generation !== state.generation) return;
    clearError();
    state.rows = page.sessions;
    state.next = page.next;
  } catch (error) {
    if (generation !== state.generation) return;
    showError(describeError(error, 'list sessions'));
    state.rows = [];
    state.next = null;
  }
  render();
}

/** Appends the next page. */
async function loadMore() {
  const generation = state.generation;
  more.disabled = true;
  try {
    const page = await fetchPage(state.next);
    if (generation !== state.generation) return;
    state.rows = state.rows.concat(page.sessions);
    state.next = page.next;
    render();
  } catch (error) {
    showError(describeError(error, 'load more sessions'));
  } finally {
    more.disabled = false;
  }
}

/**
 * Fetches again as many rows as are loaded (so "Load more" pages are kept): statuses,
 * durations and sizes change, and new sessions appear at the top.
 */
async function refresh() {
  const generation = state.generation;
  const limit = Math.min(MAX_LIMIT, Math.max(PAGE_SIZE, state.rows.length));
  try {
    const page = await fetchPage(undefined, limit);
    if (generation !== state.generation) return;
    state.rows = page.sessions;
    state.next = page.next;
  } catch (error) {
    if (generation !== state.generation) return;
    showError(describeError(error, 'refresh the sessions'));
  }
  render();
}

function stopRefresh() {
  clearTimeout(state.timer);
  state.timer = null;
}

/** Refreshes in 5 s if anything shown may still change. */
function scheduleRefresh() {
  stopRefresh();
  if (state.rows.some((row) => row.status === 'live' || row.status === 'finalising')) {
    state.timer = setTimeout(refresh, REFRESH_MS);
  }
}

function render() {
  if (state.rows.length === 0) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 10, className: 'empty' }, 'No sessions match')));
  } else {
    const now = Date.now();
    tbody.replaceChildren(...state.rows.map((row) => renderRow(row, now)));
  }
  more.hidden = state.next === null || state.next === undefined;
  scheduleRefresh();
}

/** One session as a table row. */
function renderRow(row, now) {
  const live = row.status === 'live';
  const role = state.me?.role;
  const actions = el('div', { className: 'row-actions' }, el('a', { className: 'replay', href: `/sessions/${row.id}` }, 'Replay'));
  if (live && seesEveryone(role)) {
    actions.append(el('a', { className: 'watch', href: `/sessions/${row.id}/live` }, 'Watch'));
  }
  if (live && role === 'admin') {
    actions.append(el('button', { type: 'button', className: 'kill danger small', onclick: () => askKill(row) }, 'Kill'));
  }
  const started = new Date(row.started_at);
  return el(
    'tr',
    { dataset: { sessionId: row.id, status: row.status } },
    el('td', {}, el('time', { datetime: started.toISOString(), title: row.id }, formatTime(row.started_at))),
    el('td', {}, row.user),
    el('td', { title: row.container_image }, row.container_name),
    el('td', {}, row.client_kind),
    el('td', {}, el('span', { className: `badge badge-${row.status}` }, row.status)),
    el('td', { className: 'num' }, formatDuration(sessionDuration(row, now))),
    el('td', { className: 'num' }, formatBytes(row.bytes_out)),
    el('td', { className: 'num' }, formatBytes(row.recording_size)),
    el('td', { className: 'num' }, row.exit_code ?? '—'),
    el('td', {}, actions),
  );
}

/** Opens the confirmation dialog for killing a live session. */
function askKill(row) {
  state.killing = row;
  document.getElementById('kill-text').textContent =
    `${row.user}@${row.container_name}, started ${formatTime(row.started_at)} (session ${row.id}).`;
  dialog.returnValue = '';
  dialog.showModal();
}

dialog.addEventListener('close', async () => {
  const row = state.killing;
  state.killing = null;
  if (dialog.returnValue !== 'kill' || !row) return;
  try {
    const outcome = await api(`/api/v1/sessions/${row.id}/kill`, { method: 'POST' });
    clearError();
    const how = outcome.delivery === 'local' ? 'this gateway ended it' : `gateway node ${outcome.node} was told to end it`;
    showNotice(`${state.me.user} killed ${row.user}@${row.container_name} (session ${row.id}): ${how}.`);
  } catch (error) {
    showError(describeError(error, 'kill this session'));
  }
  refresh();
});

// The search box opens the search page with what was typed (nothing typed: nothing to do).
searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const q = searchForm.elements.q.value.trim();
  if (!q) {
    searchForm.elements.q.focus();
    return;
  }
  location.assign('/search' + query({ q, kind: searchForm.elements.kind.value }));
});

form.addEventListener('submit', (event) => {
  event.preventDefault();
  state.filters = readForm();
  history.pushState(null, '', '/sessions' + query(state.filters));
  showNotice();
  reload();
});

form.addEventListener('reset', (event) => {
  event.preventDefault();
  fillForm({});
  state.filters = {};
  history.pushState(null, '', '/sessions');
  showNotice();
  reload();
});

window.addEventListener('popstate', () => {
  state.filters = filtersFromLocation();
  fillForm(state.filters);
  reload();
});

more.addEventListener('click', loadMore);

async function main() {
  state.filters = filtersFromLocation();
  fillForm(state.filters);
  try {
    state.me = await initHeader('sessions');
  } catch (error) {
    showError(describeError(error, 'find out who is signed in'));
    return;
  }
  await reload();
}

main();
