// Web terminal (/terminal?container=<address or name>, developers and admins): a shell in a
// container, in xterm.js over the gateway's terminal WebSocket (/api/v1/terminal), which the
// sign-in cookie authorises. What is typed or pasted goes out as PLAIN frames, the terminal's
// size as WINCH frames (when the socket opens and whenever the window changes it); the
// shell's output comes back as STDOUT frames and the end of the session as one CLOSE frame,
// whose line goes to the status bar, never into the terminal. The gateway records the
// session like any other. "New session" opens another one: a session is never resumed.

import '@xterm/xterm/css/xterm.css';
import './terminal.css';
import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { Terminal } from '@xterm/xterm';
import { currentPath, describeError, query } from './lib/api.js';
import { el, showError, showNotice } from './lib/dom.js';
import { entersContainers, initHeader } from './lib/header.js';
import { encodeRequest } from './lib/protocol.js';
import { openTerminalSocket } from './lib/socket.js';

/** TERM for the shell: xterm.js is an xterm with 256 colours. */
const TERM = 'xterm-256color';
/** Largest PLAIN frame (bytes): a long paste goes out in several, well below the gateway's limit. */
const MAX_PLAIN_BYTES = 32 * 1024;
/** How long the size must stay put before it is fitted and sent (window resizes come in bursts). */
const FIT_DELAY_MS = 100;
/** CLOSE reasons that mean the session never started: the request itself was refused. */
const REFUSALS = new Set([
  'CLOSE_REASON_UNAUTHORISED',
  'CLOSE_REASON_FORBIDDEN',
  'CLOSE_REASON_CONTAINER_NOT_FOUND',
  'CLOSE_REASON_CONTAINER_NOT_RUNNING',
  'CLOSE_REASON_NO_SHELL',
  'CLOSE_REASON_BAD_REQUEST',
]);

const container = new URLSearchParams(location.search).get('container')?.trim() || '';
const statusLine = document.getElementById('status');
const reconnectButton = document.getElementById('reconnect');
const box = document.getElementById('terminal');
const utf8 = new TextDecoder();
const toUtf8 = new TextEncoder();

const terminal = new Terminal({
  allowProposedApi: true, // the Unicode 11 width tables are a proposed API
  cursorBlink: true,
  scrollback: 5000,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
  fontSize: 14,
});
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.loadAddon(new Unicode11Addon());
terminal.unicode.activeVersion = '11';
window.entryTerminal = terminal;

// Copy and paste with Ctrl+Shift+C / Ctrl+Shift+V, as in desktop terminals: Ctrl+C stays the
// shell's interrupt. (The browser's own copy — the context menu, or Cmd+C — works too.)
terminal.attachCustomKeyEventHandler((event) => {
  if (event.type !== 'keydown' || !event.ctrlKey || !event.shiftKey || event.altKey) return true;
  if (event.code === 'KeyC') {
    const selection = terminal.getSelection();
    if (selection) copyText(selection);
    return false;
  }
  // Ctrl+Shift+V: let the browser paste into xterm's textarea, not send ^V to the shell.
  return event.code !== 'KeyV';
});

/** Puts text on the clipboard: the Clipboard API where the page may use it, else execCommand. */
function copyText(text) {
  const fallback = () => {
    const area = el('textarea');
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
    terminal.focus();
  };
  if (navigator.clipboard?.writeText) navigator.clipboard.writeText(text).catch(fallback);
  else fallback();
}

let socket = null; // the open (or opening) WebSocket of the current session
let sentSize = ''; // the last "<cols> <rows>" sent on it

/**
 * Shows the session's state in `#status` (`data-state` is for styling and tests):
 * connecting, live, closed, refused or disconnected. `over` shows the New session button.
 */
function setStatus(state, text, over = false) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
  reconnectButton.textContent = state === 'refused' ? 'Try again' : 'New session';
  reconnectButton.hidden = !over;
}

/** The page will open no session at all (no container given, not allowed): no terminal either. */
function refuseHere(status, ...message) {
  showError(...message);
  setStatus('refused', status);
  document.querySelector('.terminal-frame').hidden = true;
}

/** Sends one request frame if the socket is open. */
function send(type, content) {
  if (socket?.readyState !== WebSocket.OPEN) return;
  socket.send(encodeRequest({ type, content }));
}

/** Sends bytes for the shell's stdin, in frames of at most MAX_PLAIN_BYTES. */
function sendInput(bytes) {
  for (let start = 0; start < bytes.length; start += MAX_PLAIN_BYTES) {
    send('PLAIN', bytes.subarray(start, start + MAX_PLAIN_BYTES));
  }
}

/** Sends the terminal's size as WINCH "<cols> <rows>" unless the shell has it already. */
function sendSize() {
  const size = `${terminal.cols} ${terminal.rows}`;
  if (socket?.readyState !== WebSocket.OPEN || size === sentSize) return;
  sentSize = size;
  send('WINCH', toUtf8.encode(size));
}

/** Fits the terminal to its box and tells the shell when that changed its size. */
function fitTerminal() {
  fit.fit();
  sendSize();
}

let fitTimer = null;
new ResizeObserver(() => {
  clearTimeout(fitTimer);
  fitTimer = setTimeout(fitTerminal, FIT_DELAY_MS);
}).observe(box);

/**
 * Text typed or pasted as UTF-8. A character outside the BMP can come in two events, one
 * half of its surrogate pair each (Firefox does so for keys that type an emoji): a trailing
 * high surrogate waits for the next event instead of going out as U+FFFD.
 */
let pendingSurrogate = '';
function encodeInput(data) {
  let text = pendingSurrogate + data;
  pendingSurrogate = '';
  const last = text.charCodeAt(text.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) {
    pendingSurrogate = text.slice(-1);
    text = text.slice(0, -1);
  }
  return toUtf8.encode(text);
}

terminal.onData((data) => sendInput(encodeInput(data)));
// Some mouse reports are raw bytes, given as a string of code points 0-255.
terminal.onBinary((data) => sendInput(Uint8Array.from(data, (char) => char.charCodeAt(0) & 0xff)));

/** Opens a new session: the terminal WebSocket, with the shell's output going to the terminal. */
function connect() {
  let opened = false; // the upgrade succeeded
  let closed = false; // a CLOSE frame came: the end of the socket is expected
  const ws = openTerminalSocket(`/api/v1/terminal${query({ container, term: TERM })}`, {
    onOutput: (bytes) => terminal.write(bytes),
    onClose: (message) => {
      closed = true;
      ended(message);
    },
    onBadFrame: (error) => showError(`Could not read a frame from the gateway: ${error.message}`),
  });
  socket = ws;
  window.entrySocket = ws;
  sentSize = '';
  pendingSurrogate = '';
  terminal.options.disableStdin = false;
  setStatus('connecting', `connecting to ${container}…`);

  ws.addEventListener('open', () => {
    opened = true;
    setStatus('live', 'live');
    fitTerminal();
    terminal.focus();
  });
  ws.addEventListener('close', () => {
    if (socket !== ws) return;
    socket = null;
    terminal.options.disableStdin = true;
    if (closed) return;
    if (opened) {
      setStatus('disconnected', 'disconnected: the connection to the gateway was lost', true);
      return;
    }
    // A refused upgrade tells the browser nothing but that the socket failed.
    setStatus('refused', 'refused: the connection failed', true);
    showError(
      'The gateway refused the terminal connection. This page’s origin may not be allowed ' +
        '(gateway.allowed_origins), a proxy may block WebSocket, or the gateway is down.',
    );
  });
}

/** The session is over (a CLOSE frame): its line goes to the status bar, and for a refusal to `#error`. */
function ended(message) {
  // The CLI's ">>> " prefix means nothing here; the code is added unless the line says it.
  const line = utf8.decode(message.content).trim().replace(/^>>> /, '') || 'session closed';
  const said = message.exit_code === undefined || line.includes(`code ${message.exit_code}`);
  const text = said ? line : `${line} (exit code ${message.exit_code})`;
  terminal.options.disableStdin = true;
  if (!REFUSALS.has(message.close_reason)) {
    setStatus('closed', text, true);
    return;
  }
  setStatus('refused', text, true);
  if (message.close_reason === 'CLOSE_REASON_UNAUTHORISED') {
    const signIn = el('a', { href: '/login?next=' + encodeURIComponent(currentPath()) }, 'Sign in again');
    showError(`The gateway refused the session: ${line} `, signIn, '.');
  } else {
    showError(`The gateway refused the session: ${line}`);
  }
}

reconnectButton.addEventListener('click', () => {
  showError();
  showNotice();
  terminal.reset();
  connect();
});

async function main() {
  terminal.open(box);
  fit.fit();
  let me;
  try {
    me = await initHeader('containers');
  } catch (error) {
    refuseHere('not signed in', describeError(error, 'find out who is signed in'));
    return;
  }
  if (!container) {
    refuseHere('no container', 'No container given. ', el('a', { href: '/containers' }, 'Pick one'), ' to open a terminal in.');
    return;
  }
  document.getElementById('title').textContent = container;
  document.title = `${container} · Terminal · Entry`;
  if (!entersContainers(me.role)) {
    refuseHere('not allowed', `You may not enter containers: only developers and admins do (you are ${me.role}).`);
    return;
  }
  connect();
  terminal.focus();
}

main();
