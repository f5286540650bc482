// Search (/search?q=…&kind=…&user=…&container=…&since=…&until=…): commands and output lines
// of the sessions the signed-in user may see, newest first, from `GET /api/v1/search`. Each
// hit links to the replay at its moment (`/sessions/<id>?t=<seconds>`), with the match
// marked. The query lives in the page's query string; "Older" appends the next page.
//
// Hits carry text a user typed or a program printed: it is only ever inserted as text, and
// the match is marked by splitting that text into text nodes around a <mark> element.

import './search.css';
import { api, describeError, query } from './lib/api.js';
import { clearError, el, showError } from './lib/dom.js';
import { formatOffset, formatTime, fromDatetimeLocal, toDatetimeLocal } from './lib/format.js';
import { bindFilters } from './lib/filters.js';
import { initHeader } from './lib/header.js';

const PAGE_SIZE = 50;
const FIELDS = ['q', 'kind', 'user', 'container', 'since', 'until'];
const KINDS = ['all', 'commands', 'output'];
const FLAGS = ['paste', 'continued', 'unechoed', 'program'];
const COLUMNS = 5;

/** What each flag of a command means, as the badge's tooltip. */
const FLAG_TITLES = {
  paste: 'Pasted with other lines',
  continued: 'Spans several lines',
  unechoed: 'Typed without echo: the text is not known',
  program: 'Ran a full-screen program',
};

const form = document.getElementById('search-form');
const tbody = document.querySelector('#results tbody');
const older = document.getElementById('older');

const state = {
  params: {}, // as sent to the API: strings, since/until in unix ms
  hits: [], // every loaded hit, newest first
  next: null, // `before` for the next page, or null on the last
  generation: 0, // bumped when the query changes, so late answers for old ones are dropped
};

/** The query in the page's query string (an unknown kind is "all"). */
function paramsFromLocation() {
  const search = new URLSearchParams(location.search);
  const params = Object.fromEntries(FIELDS.map((name) => [name, (search.get(name) || '').trim()]));
  if (!KINDS.includes(params.kind)) params.kind = 'all';
  return params;
}

/** Shows the query in the form (times as local date-times). */
function fillForm(params) {
  for (const name of FIELDS) {
    const value = params[name] || '';
    form.elements[name].value = name === 'since' || name === 'until' ? toDatetimeLocal(value) : value;
  }
  if (!form.elements.kind.value) form.elements.kind.value = 'all';
}

/** Reads the form into API parameters. */
function readForm() {
  const params = {};
  for (const name of FIELDS) {
    const value = form.elements[name].value.trim();
    params[name] = name === 'since' || name === 'until' ? fromDatetimeLocal(value) : value;
  }
  return params;
}

/** Fetches one page of hits for the current query. */
function fetchPage(before) {
  return api('/api/v1/search' + query({ ...state.params, before, limit: PAGE_SIZE }));
}

/** Runs the current query, replacing the table. */
async function reload() {
  const generation = ++state.generation;
  older.hidden = true;
  state.hits = [];
  state.next = null;
  document.title = state.params.q ? `Search “${state.params.q}” · Entry` : 'Search · Entry';
  if (!state.params.q) {
    clearError();
    renderMessage('Type what to look for: a command, or text a session printed.');
    return;
  }
  renderMessage('Searching…');
  try {
    const page = await fetchPage();
    if (generation !== state.generation) return;
    clearError();
    state.hits = page.hits;
    state.next = page.next ?? null;
  } catch (error) {
    if (generation !== state.generation) return;
    showError(describeError(error, 'search'));
    renderMessage('No results.');
    return;
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
    showError(describeError(error, 'load older results'));
  } finally {
    older.disabled = false;
  }
}

/** One message across the table in place of results. */
function renderMessage(message) {
  tbody.replaceChildren(el('tr', {}, el('td', { colspan: COLUMNS, className: 'empty' }, message)));
}

function render() {
  if (state.hits.length === 0) {
    const where = { commands: 'No command', output: 'No output' }[state.params.kind] ?? 'No command or output';
    renderMessage(`${where} matches “${state.params.q}”.`);
  } else {
    tbody.replaceChildren(...state.hits.map(renderHit));
  }
  older.hidden = state.next === null || state.next === undefined;
}

/** Where a hit opens the replay: its time, rounded up to the millisecond so the frame has it. */
function replayHref(hit) {
  const at = Number.isFinite(hit.at) ? Math.max(0, hit.at) : 0;
  const t = Math.ceil(at * 1000) / 1000;
  return `/sessions/${encodeURIComponent(hit.session_id)}?t=${t}`;
}

/**
 * A hit's text with its match in a <mark>: text nodes and one element, never parsed HTML.
 * `highlight` is a pair of character (code point) offsets; a missing or impossible one marks
 * nothing.
 */
function markedText(text, highlight) {
  const chars = Array.from(text ?? '');
  const [start, end] = Array.isArray(highlight) ? highlight : [];
  const valid = Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= chars.length;
  if (!valid) return [document.createTextNode(chars.join(''))];
  const nodes = [];
  if (start > 0) nodes.push(document.createTextNode(chars.slice(0, start).join('')));
  const mark = document.createElement('mark');
  mark.textContent = chars.slice(start, end).join('');
  nodes.push(mark);
  if (end < chars.length) nodes.push(document.createTextNode(chars.slice(end).join('')));
  return nodes;
}

/** What a hit is: "command" or "output", and a command's flags as small badges. */
function renderKind(hit) {
  const kind = hit.kind === 'command' ? 'command' : 'output';
  const cell = el('td', { className: 'what' }, el('span', { className: `kind kind-${kind}` }, kind));
  for (const flag of hit.flags ?? []) {
    const known = FLAGS.includes(flag) ? flag : 'other';
    cell.append(' ', el('span', { className: `flag flag-${known}`, title: FLAG_TITLES[flag] ?? null }, String(flag)));
  }
  return cell;
}

/** One hit as a table row linking to the replay at its moment. */
function renderHit(hit) {
  const href = replayHref(hit);
  const when = Number.isFinite(hit.session_started_at) && Number.isFinite(hit.at)
    ? hit.session_started_at + Math.round(hit.at * 1000)
    : null;
  const offset = `${formatOffset(hit.at)} into the session`;
  const text = (hit.text ?? '') === '' ? [el('span', { className: 'subtle' }, '(no text)')] : markedText(hit.text, hit.highlight);
  return el(
    'tr',
    { dataset: { sessionId: hit.session_id, at: String(hit.at), kind: hit.kind } },
    el(
      'td',
      {},
      el('a', { className: 'when', href, title: `${offset} (session ${hit.session_id})` },
        el('time', { datetime: when === null ? null : new Date(when).toISOString() }, formatTime(when))),
    ),
    el('td', {}, hit.user),
    el('td', {}, hit.container),
    renderKind(hit),
    el('td', { className: 'text' }, el('a', { className: 'hit', href }, el('code', {}, ...text))),
  );
}

bindFilters(form, '/search', {
  fromLocation: paramsFromLocation,
  read: readForm,
  fill: fillForm,
  changed: (params) => {
    state.params = params;
    reload();
  },
});

older.addEventListener('click', loadOlder);

async function main() {
  state.params = paramsFromLocation();
  fillForm(state.params);
  try {
    await initHeader('search');
  } catch (error) {
    showError(describeError(error, 'find out who is signed in'));
    renderMessage('No results.');
    return;
  }
  await reload();
}

main();
