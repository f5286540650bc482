// Live watch page (/sessions/<id>/live): the output of a running session, read-only, in
// xterm.js. The gateway's WebSocket sends the current screen first, then live output, then
// a CLOSE frame when the session ends. Nothing is ever sent on the socket. While the session
// is live, its commands held for review by a command rule are fetched every second and shown
// above the terminal, with Approve / Deny for admins.

import '@xterm/xterm/css/xterm.css';
import './watch.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { api, describeError, sessionIdFromPath } from './lib/api.js';
import { clearError, el, showError, showNotice } from './lib/dom.js';
import { initHeader, seesEveryone } from './lib/header.js';
import { decisionText, fetchPending, showPending } from './lib/reviews.js';
import { containerOf } from './lib/session-meta.js';
import { openTerminalSocket } from './lib/socket.js';

const id = sessionIdFromPath();
const statusLine = document.getElementById('status');
const reconnectButton = document.getElementById('reconnect');
const reviews = document.getElementById('reviews');
const reviewList = document.getElementById('review-list');
const utf8 = new TextDecoder();

const terminal = new Terminal({
  disableStdin: true,
  convertEol: false,
  scrollback: 5000,
  cursorBlink: false,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
  fontSize: 14,
});
const fit = new FitAddon();
terminal.loadAddon(fit);
window.entryTerminal = terminal;

let me = null; // {user, role} of who is signed in
let fixedSize = false; // true when the session's own size is known: the terminal keeps it
let socket = null;

const REVIEW_REFRESH_MS = 1000;
const pending = {
  hits: [], // this session's commands held for review, newest first
  timer: null,
  run: 0, // bumped by each start and stop, so an older loop's late answer is dropped
  failed: false, // the last fetch failed (its error is shown)
  decided: new Set(), // ids of those decided here (a fetch under way may still say pending)
};

/** Shows the connection state in `#status` (`data-state` is for styling and tests). */
function setStatus(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
  reconnectButton.hidden = state !== 'disconnected';
}

/** Sizes the terminal as the session's terminal was last, else to fit its box. */
function sizeTerminal(row) {
  fixedSize = Boolean(row.last_cols && row.last_rows);
  if (fixedSize) terminal.resize(row.last_cols, row.last_rows);
  else fit.fit();
}

/** Follows the watched terminal's size, sent as "<cols> <rows>" first and at every resize. */
function resizeTo(content) {
  const [cols, rows] = utf8.decode(content).split(' ').map(Number);
  if (!(cols > 0 && rows > 0)) return;
  fixedSize = true;
  terminal.resize(cols, rows);
}

window.addEventListener('resize', () => {
  if (!fixedSize) fit.fit();
});

/**
 * Checks the session is live and may be watched (a refused WebSocket upgrade cannot be read
 * by the browser, so the reason is found out first), then connects.
 */
async function start() {
  showError();
  showNotice();
  setStatus('connecting', 'connecting…');
  let row;
  try {
    row = await api(`/api/v1/sessions/${id}`);
  } catch (error) {
    showError(describeError(error, 'watch this session'));
    setStatus('unavailable', 'not available');
    return;
  }
  document.getElementById('title').textContent = `${row.user}@${containerOf(row)}`;
  document.title = `Watch ${row.user}@${containerOf(row)} · Entry`;
  if (row.status !== 'live') {
    setStatus('not-live', `not live (${row.status})`);
    showError(`This session is not live (it is ${row.status}): there is nothing to watch. `, replayLink('Replay it'), '.');
    return;
  }
  if (!seesEveryone(me.role)) {
    showError(`You may not watch live sessions: only auditors and admins watch them (you are ${me.role}).`);
    setStatus('unavailable', 'not available');
    return;
  }
  sizeTerminal(row);
  connect();
  startPending();
}

/** Fetches the session's held commands every second from now until stopPending(). */
function startPending() {
  stopPending();
  refreshPending(pending.run);
}

/** The session is over (or out of reach): its commands are no longer held. */
function stopPending() {
  pending.run += 1;
  clearTimeout(pending.timer);
  pending.timer = null;
  pending.hits = [];
  renderPending();
}

async function refreshPending(run) {
  try {
    const hits = await fetchPending(id);
    if (run !== pending.run) return;
    pending.hits = hits.filter((hit) => !pending.decided.has(hit.id));
    if (pending.failed) showError();
    pending.failed = false;
  } catch (error) {
    if (run !== pending.run) return;
    pending.failed = true;
    showError(describeError(error, 'list the commands held for review'));
  }
  renderPending();
  pending.timer = setTimeout(() => refreshPending(run), REVIEW_REFRESH_MS);
}

function renderPending() {
  showPending(reviewList, pending.hits, { me, onDecided: decided, onFailed: showError });
  reviews.hidden = pending.hits.length === 0;
}

/** An admin approved or denied a held command here: say so (the terminal shows the rest). */
function decided(hit, verdict) {
  clearError();
  showNotice(decisionText(hit, verdict));
  pending.decided.add(hit.id);
  pending.hits = pending.hits.filter((held) => held.id !== hit.id);
  renderPending();
}

function replayLink(text) {
  return el('a', { href: `/sessions/${id}` }, text);
}

/** Opens the watch socket and writes what it sends to the terminal. */
function connect() {
  let closed = false; // a CLOSE frame came: the session ended, the socket's end is expected
  const ws = openTerminalSocket(`/api/v1/sessions/${id}/watch`, {
    onOutput: (bytes) => terminal.write(bytes),
    onResize: resizeTo,
    onClose: (message) => {
      closed = true;
      stopPending();
      setStatus('closed', closeText(message));
      showNotice('The session has ended. ', replayLink('Replay the whole session'), '.');
      if (message.exit_code === undefined) addExitCode(closeText(message));
    },
    onBadFrame: (error) => showError(`Could not read a frame from the gateway: ${error.message}`),
  });
  socket = ws;
  ws.addEventListener('open', () => setStatus('live', 'live'));
  ws.addEventListener('close', () => {
    if (socket !== ws) return;
    socket = null;
    if (closed) return;
    stopPending();
    setStatus('disconnected', 'disconnected');
  });
}

/** The status line for a CLOSE frame: its text, and the exit code when there is one. */
function closeText(message) {
  const line = utf8.decode(message.content).trim() || 'session closed';
  return message.exit_code === undefined ? line : `${line} (exit code ${message.exit_code})`;
}

/**
 * A CLOSE frame without an exit code (the watch socket does not always know it): the
 * session's row has it once the gateway has recorded the end, which may take a moment.
 */
async function addExitCode(line) {
  for (const delay of [300, 1500, 4000]) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    let row;
    try {
      row = await api(`/api/v1/sessions/${id}`);
    } catch {
      return; // the status line stays as the CLOSE frame said
    }
    if (row.exit_code !== null && row.exit_code !== undefined) {
      setStatus('closed', `${line} (exit code ${row.exit_code})`);
      return;
    }
    if (row.ended_at) return; // ended without an exit code (killed, say)
  }
}

reconnectButton.addEventListener('click', () => {
  terminal.reset(); // the gateway sends the current screen again
  start();
});

async function main() {
  document.getElementById('replay-link').href = `/sessions/${id}`;
  terminal.open(document.getElementById('terminal'));
  try {
    me = await initHeader('sessions');
  } catch (error) {
    showError(describeError(error, 'find out who is signed in'));
    return;
  }
  start();
}

main();
