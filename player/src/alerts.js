// Alerts (/alerts?session=…&outcome=…): the commands that matched a command rule, newest
// first, from `GET /api/v1/alerts` (auditors and admins see every user's, a developer their
// own). Each row links to the replay at the command's second; "Older" appends the next page;
// admins approve or deny a held command (outcome `pending`) from its row. While a held
// command is shown, the list is fetched again every 2 seconds.
//
// A command is text a user typed: it is only ever inserted as text.

import './alerts.css';
import { api, describeError, query } from './lib/api.js';
import { clearError, el, showError, showNotice } from './lib/dom.js';
import { bindFilters } from './lib/filters.js';
import { formatOffset, formatTime } from './lib/format.js';
import { initHeader } from './lib/header.js';
import { OUTCOMES, actionLabel, decisionButtons, decisionText, mayDecide, outcomeLabel } from './lib/reviews.js';

const PAGE_SIZE = 100;
const MAX_LIMIT = 1000; // the API's largest page
const REFRESH_MS = 2000;

const form = document.getElementById('alert-filters');
const tbody = document.querySelector('#alerts tbody');
const reviewHeader = document.querySelector('#alerts th.review-col');
const older = document.getElementById('older');

const state = {
  me: null,
  params: { session: '', outcome: '' }, // the filters, as in the query string
  hits: [], // every loaded hit, newest first
  next: null, // `before` for the next page, or null on the last
  generation: 0, // bumped when the filters change, so late answers for old ones are dropped
  timer: null,
  rows: new Map(), // hit id -> {key, tr}: rows kept while their hit is unchanged
};

/** The filters in the page's query string (an unknown outcome is any). */
function paramsFromLocation() {
  const search = new URLSearchParams(location.search);
  const outcome = search.get('outcome') || '';
  return { session: (search.get('session') || '').trim(), outcome: OUTCOMES.includes(outcome) ? outcome : '' };
}

function fillForm(params) {
  form.elements.session.value = params.session;
  form.elements.outcome.value = params.outcome;
}

/** Fetches the hits older than `before` (a hit id), newest first. */
function fetchPage(before, limit = PAGE_SIZE) {
  return api('/api/v1/alerts' + query({ ...state.params, before, limit }));
}

/** Loads the first page for the current filters, replacing the table. */
async function reload() {
  const generation = ++state.generation;
  stopRefresh();
  older.hidden = true;
  try {
    const page = await fetchPage();
    if (generation !== state.generation) return;
    clearError();
    state.hits = page.hits;
    state.next = page.next ?? null;
  } catch (error) {
    if (generation !== state.generation) return;
    showError(describeError(error, 'list the alerts'));
    state.hits = [];
    state.next = null;
  }
  render();
}

/** Appends the next (older) page. */
async function loadOlder() {
  const generation = state.generation;
  older.disabled = true;
  try {
    const page = await fetchPage(state.next);
    if (generation !== state.generation) return;
    state.hits = state.hits.concat(page.hits);
    state.next = page.next ?? null;
    render();
  } catch (error) {
    showError(describeError(error, 'load older alerts'));
  } finally {
    older.disabled = false;
  }
}

/** Fetches again as many hits as are loaded: held commands get decided, new hits come in. */
async function refresh() {
  const generation = state.generation;
  const limit = Math.min(MAX_LIMIT, Math.max(PAGE_SIZE, state.hits.length));
  try {
    const page = await fetchPage(undefined, limit);
    if (generation !== state.generation) return;
    state.hits = page.hits;
    state.next = page.next ?? null;
  } catch (error) {
    if (generation !== state.generation) return;
    showError(describeError(error, 'refresh the alerts'));
  }
  render();
}

function stopRefresh() {
  clearTimeout(state.timer);
  state.timer = null;
}

/** Refreshes in 2 s while a held command is shown (its outcome is still to come). */
function scheduleRefresh() {
  stopRefresh();
  if (state.hits.some((hit) => hit.outcome === 'pending')) state.timer = setTimeout(refresh, REFRESH_MS);
}

function render() {
  const admin = state.me?.role === 'admin';
  reviewHeader.hidden = !admin;
  if (state.hits.length === 0) {
    state.rows.clear();
    const what = state.params.outcome ? `No ${state.params.outcome.replaceAll('_', ' ')} alerts` : 'No alerts';
    const where = state.params.session ? ' in this session' : '';
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: admin ? 9 : 8, className: 'empty' }, `${what}${where}.`)));
  } else {
    // Rows whose hit did not change are kept, so a refresh never replaces a button under the pointer.
    const rows = new Map();
    const trs = state.hits.map((hit) => {
      const key = JSON.stringify(hit);
      const kept = state.rows.get(hit.id);
      const tr = kept && kept.key === key ? kept.tr : renderHit(hit, admin);
      rows.set(hit.id, { key, tr });
      return tr;
    });
    state.rows = rows;
    const same = trs.length === tbody.children.length && trs.every((tr, i) => tbody.children[i] === tr);
    if (!same) tbody.replaceChildren(...trs);
  }
  older.hidden = state.next === null;
  scheduleRefresh();
}

/** Where a hit opens the replay: the second of its Enter. */
function replayHref(hit) {
  const t = Number.isFinite(hit.offset) ? Math.max(0, Math.floor(hit.offset)) : 0;
  return `/sessions/${encodeURIComponent(hit.session_id)}?t=${t}`;
}

/** One hit as a table row linking to the replay at its moment. */
function renderHit(hit, admin) {
  const href = replayHref(hit);
  const offset = `${formatOffset(hit.offset)} into the session`;
  const decided = hit.decided_by
    ? el('span', { title: hit.decided_at ? formatTime(hit.decided_at) : null }, hit.decided_by)
    : '—';
  let review = null;
  if (admin) {
    let content = '';
    if (mayDecide(state.me, hit)) content = decisionButtons(hit, { onDecided: decided, onFailed: showError });
    else if (hit.outcome === 'pending') content = el('span', { className: 'subtle' }, 'your own: another admin decides');
    review = el('td', { className: 'decide' }, content);
  }
  return el(
    'tr',
    { dataset: { hitId: hit.id, sessionId: hit.session_id, outcome: hit.outcome } },
    el(
      'td',
      {},
      el('a', { className: 'when', href, title: `${offset} (session ${hit.session_id})` },
        el('time', { datetime: new Date(hit.at).toISOString() }, formatTime(hit.at))),
    ),
    el('td', {}, hit.user),
    el('td', {}, hit.container),
    el('td', {}, hit.rule),
    el('td', {}, actionLabel(hit.action)),
    el('td', { className: 'command' }, el('a', { className: 'command', href, title: offset }, el('code', {}, hit.command))),
    el('td', {}, outcomeLabel(hit.outcome)),
    el('td', {}, decided),
    review,
  );
}

/** An admin approved or denied a held command from its row. */
function decided(hit, verdict) {
  clearError();
  showNotice(decisionText(hit, verdict));
  refresh();
}

bindFilters(form, '/alerts', {
  fromLocation: paramsFromLocation,
  read: () => ({ session: form.elements.session.value.trim(), outcome: form.elements.outcome.value }),
  fill: fillForm,
  changed: (params, how) => {
    state.params = params;
    if (how !== 'history') showNotice();
    reload();
  },
});

older.addEventListener('click', loadOlder);

async function main() {
  state.params = paramsFromLocation();
  fillForm(state.params);
  try {
    state.me = await initHeader('alerts');
  } catch (error) {
    showError(describeError(error, 'find out who is signed in'));
    return;
  }
  await reload();
}

main();
