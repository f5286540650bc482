// Session list (/sessions): a search box that opens the search page (/search?q=…&kind=…),
// filters kept in the query string, one table row per session, "Load more" for older pages,
// links to replay and watch, and a kill button for admins. While any shown session is live or
// finalising, the table refreshes every 5 seconds. A session whose commands matched a command
// rule has an "N alerts" badge linking to the alerts page, and one whose command is held for
// review a "review pending" badge; admins get the held commands of the listed sessions above
// the table with Approve / Deny, fetched again every 2 seconds while any is shown.

import './sessions.css';
import { api, describeError, query } from './lib/api.js';
import { clearError, el, showError, showNotice } from './lib/dom.js';
import { formatBytes, formatDuration, formatTime, fromDatetimeLocal, sessionDuration, toDatetimeLocal } from './lib/format.js';
import { bindFilters } from './lib/filters.js';
import { initHeader, seesEveryone } from './lib/header.js';
import { decisionText, fetchPending, showPending } from './lib/reviews.js';
import { containerOf } from './lib/session-meta.js';

const PAGE_SIZE = 50;
const MAX_LIMIT = 1000; // the API's largest page
const REFRESH_MS = 5000;
const REVIEW_REFRESH_MS = 2000;
const FILTERS = ['user', 'container', 'status', 'since', 'until'];

const form = document.getElementById('filters');
const searchForm = document.getElementById('search');
const tbody = document.querySelector('#sessions tbody');
const more = document.getElementById('more');
const dialog = document.getElementById('kill-dialog');
const reviews = document.getElementById('reviews');
const reviewList = document.getElementById('review-list');

const state = {
  me: null,
  filters: {}, // as sent to the API: strings, since/until in unix ms
  rows: [], // every loaded row, newest first
  next: null, // cursor for the next page, or null on the last
  generation: 0, // bumped when the filters change, so late answers for old ones are dropped
  timer: null,
  killing: null, // the row the kill dialog is about
  pending: [], // the commands held for review (admins only), newest first
  decided: new Set(), // ids of those decided here (a fetch under way may still say pending)
  pendingTimer: null,
  pendingBusy: false, // a fetch of the held commands is under way
  pendingFailed: false, // the last one failed (its error is shown)
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
  renderTable();
  more.hidden = state.next === null || state.next === undefined;
  scheduleRefresh();
  renderPending();
  pendingSoon();
}

function renderTable() {
  if (state.rows.length === 0) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 10, className: 'empty' }, 'No sessions match')));
  } else {
    const now = Date.now();
    tbody.replaceChildren(...state.rows.map((row) => renderRow(row, now)));
  }
}

/** The held commands of the sessions in the table. */
function listedPending() {
  const listed = new Set(state.rows.map((row) => row.id));
  return state.pending.filter((hit) => listed.has(hit.session_id) && !state.decided.has(hit.id));
}

/** Whether the held commands are worth fetching: for an admin, while the table shows some. */
function wantsPending() {
  return state.me?.role === 'admin' && (listedPending().length > 0 || state.rows.some((row) => row.pending_reviews > 0));
}

/** Fetches the held commands now, unless a fetch is under way or one is due within 2 s. */
function pendingSoon() {
  if (state.pendingBusy || state.pendingTimer !== null || !wantsPending()) return;
  refreshPending();
}

/**
 * Fetches the commands held for review, shows those of the listed sessions and brings the
 * rows' "review pending" badges in line with them; again in 2 s while any is shown.
 */
async function refreshPending() {
  state.pendingTimer = null;
  state.pendingBusy = true;
  try {
    state.pending = await fetchPending();
    if (state.pendingFailed) clearError();
    state.pendingFailed = false;
    if (syncBadges()) renderTable();
  } catch (error) {
    state.pendingFailed = true;
    showError(describeError(error, 'list the commands held for review'));
  } finally {
    state.pendingBusy = false;
  }
  renderPending();
  if (wantsPending()) state.pendingTimer = setTimeout(refreshPending, REVIEW_REFRESH_MS);
}

/**
 * Sets the rows' pending review counts from the held commands just fetched (newer than the
 * rows); a new one is a new alert too. Returns whether any row changed.
 */
function syncBadges() {
  const counts = new Map();
  for (const hit of listedPending()) counts.set(hit.session_id, (counts.get(hit.session_id) ?? 0) + 1);
  let changed = false;
  for (const row of state.rows) {
    const pending = counts.get(row.id) ?? 0;
    if (pending === (row.pending_reviews ?? 0)) continue;
    row.rule_hits = (row.rule_hits ?? 0) + Math.max(0, pending - (row.pending_reviews ?? 0));
    row.pending_reviews = pending;
    changed = true;
  }
  return changed;
}

/** The held commands box above the table (admins; hidden while nothing is held). */
function renderPending() {
  const hits = listedPending();
  showPending(reviewList, hits, { me: state.me, sessionLinks: true, onDecided: decided, onFailed: showError });
  reviews.hidden = hits.length === 0;
}

/** An admin approved or denied a held command: say so, and show the session as it is now. */
function decided(hit, verdict) {
  clearError();
  showNotice(decisionText(hit, verdict));
  state.decided.add(hit.id);
  renderPending();
  refresh();
}

/** The status cell: the status, and badges for a legal hold, alerts and held commands. */
function renderStatus(row) {
  const cell = el('td', { className: 'status' }, el('span', { className: `badge badge-${row.status}` }, row.status));
  if (row.hold) {
    const title = `On legal hold (never deleted by retention) since ${formatTime(row.hold.at)} by ${row.hold.by}: ${row.hold.reason}`;
    cell.append(' ', el('span', { className: 'badge badge-held', title }, 'held'));
  }
  if (row.rule_hits > 0) {
    const label = row.rule_hits === 1 ? '1 alert' : `${row.rule_hits} alerts`;
    const title = 'Commands of this session that matched a command rule';
    cell.append(' ', el('a', { className: 'badge badge-alerts', href: '/alerts' + query({ session: row.id }), title }, label));
  }
  if (row.pending_reviews > 0) {
    const label = row.pending_reviews === 1 ? 'review pending' : `${row.pending_reviews} reviews pending`;
    const href = '/alerts' + query({ session: row.id, outcome: 'pending' });
    const title = 'A command of this session waits for an admin’s approval';
    cell.append(' ', el('a', { className: 'badge badge-review', href, title }, label));
  }
  return cell;
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
    el('td', { title: row.container_image }, containerOf(row)),
    el('td', {}, row.client_kind),
    renderStatus(row),
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

bindFilters(form, '/sessions', {
  fromLocation: filtersFromLocation,
  read: readForm,
  fill: fillForm,
  changed: (filters, how) => {
    state.filters = filters;
    if (how !== 'history') showNotice();
    reload();
  },
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
