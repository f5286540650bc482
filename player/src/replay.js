// Replay page (/sessions/<id>): the session's recording in asciinema-player, with markers at
// resizes and at the exit, a choice of idle-time limit and speed, download links, and the
// session's metadata beside it.

import 'asciinema-player/dist/bundle/asciinema-player.css';
import './replay.css';
import * as AsciinemaPlayer from 'asciinema-player';
import { api, describeError, request, sessionIdFromPath } from './lib/api.js';
import { compressedTime, markersOf, originalTime, parseAsciicast } from './lib/asciicast.js';
import { el, showError, showNotice } from './lib/dom.js';
import { formatBytes, formatDuration, formatTime, sessionDuration } from './lib/format.js';
import { initHeader, seesEveryone } from './lib/header.js';

const id = sessionIdFromPath();
const idleSelect = document.getElementById('idle');
const speedSelect = document.getElementById('speed');
const box = document.getElementById('player');

const state = {
  me: null,
  recording: null, // {header, events, text} from parseAsciicast
  player: null,
  limit: Infinity, // the idle-time limit the player was created with
  playing: false,
};

/** The idle-time limit in force: the select's, else the recording's own, else none. */
function idleLimit() {
  const chosen = Number.parseFloat(idleSelect.value);
  if (Number.isFinite(chosen)) return chosen;
  return state.recording?.header.idle_time_limit ?? Infinity;
}

/**
 * (Re)creates the player with the current options, at `position` (seconds on the player's
 * own timeline, i.e. with idle gaps already cut), paused unless `play` is true.
 */
function createPlayer(position = 0, play = false) {
  const { text, events } = state.recording;
  const limit = idleLimit();
  const markers = markersOf(events, limit);
  removePlayer();
  const player = AsciinemaPlayer.create({ data: text }, box, {
    preload: true,
    controls: true, // always shown: play/pause, the seek bar with its markers
    fit: 'both',
    idleTimeLimit: Number.isFinite(limit) ? limit : undefined,
    speed: Number.parseFloat(speedSelect.value) || 1,
    markers,
    logger: playerLogger,
  });
  player.addEventListener('playing', () => (state.playing = true));
  player.addEventListener('pause', () => (state.playing = false));
  player.addEventListener('ended', () => (state.playing = false));
  // Commands wait for the player to load, and run in order.
  if (position > 0) player.seek(position);
  if (play) player.play();
  state.player = player;
  state.limit = limit;
  window.entryPlayer = player;
  window.entryMarkers = markers; // [time, label] pairs, as given to the player
}

/** Removes the player, if any, and shows `message` in its box instead. */
function removePlayer(message) {
  state.player?.dispose();
  state.player = null;
  state.playing = false;
  box.replaceChildren(...(message ? [el('p', { className: 'placeholder' }, message)] : []));
}

/** Player problems (a recording it cannot read, say) are shown, not only logged. */
const playerLogger = {
  log() {},
  debug() {},
  info() {},
  warn: (...args) => console.warn('asciinema-player:', ...args),
  error: (...args) => {
    console.error('asciinema-player:', ...args);
    const detail = args.map((arg) => (arg instanceof Error ? arg.message : String(arg))).join(' ');
    showError(`The player failed: ${detail}`);
  },
};

// asciinema-player runs its terminal emulator as WebAssembly, compiled as the page loads: a
// Content-Security-Policy without 'wasm-unsafe-eval' stops it. Say so rather than leaving a
// dead black box (load() shows it again, as it clears older errors).
const WASM_BLOCKED =
  "The player cannot run: this gateway's Content-Security-Policy does not allow WebAssembly " +
  "(script-src 'wasm-unsafe-eval'), which asciinema-player needs. The recording can still be downloaded.";
let wasmBlocked = false;
document.addEventListener('securitypolicyviolation', (event) => {
  if (event.blockedURI !== 'wasm-eval') return;
  wasmBlocked = true;
  showError(WASM_BLOCKED);
});

/**
 * Recreates the player after an option changed, at the same moment of the session: its
 * position is converted from the old idle-time limit's timeline to the new one's.
 */
function optionsChanged() {
  if (!state.player || !state.recording) return;
  const { events } = state.recording;
  const original = originalTime(events, state.limit, state.player.getCurrentTime() || 0);
  createPlayer(compressedTime(events, idleLimit(), original), state.playing);
}

idleSelect.addEventListener('change', optionsChanged);
speedSelect.addEventListener('change', optionsChanged);

/** Fetches the recording: `{text, partial}`. */
async function fetchRecording() {
  const response = await request(`/api/v1/sessions/${id}/recording`, { accept: 'application/x-asciicast' });
  return { text: await response.text(), partial: response.headers.get('x-entry-recording') === 'partial' };
}

/** Loads (or reloads) the session's row and recording, and shows both. */
async function load() {
  showError(wasmBlocked ? WASM_BLOCKED : '');
  let row;
  try {
    row = await api(`/api/v1/sessions/${id}`);
  } catch (error) {
    showError(describeError(error, 'see this session'));
    removePlayer('No recording to show.');
    return;
  }
  renderTitle(row);
  renderMeta(row);

  let fetched;
  try {
    fetched = await fetchRecording();
  } catch (error) {
    showError(describeError(error, 'load the recording'));
    removePlayer('No recording to show.');
    return;
  }
  showNotice(...(fetched.partial ? partialNotice() : []));
  try {
    state.recording = parseAsciicast(fetched.text);
  } catch (error) {
    showError(`Could not read the recording: ${error.message}`);
    removePlayer('No recording to show.');
    return;
  }
  if (state.recording.events.length === 0) {
    removePlayer('The recording has no output yet.');
    return;
  }
  createPlayer();
}

/** The notice for a session still running: replay stops at what was recorded so far. */
function partialNotice() {
  const parts = ['This session is still running: replay shows it up to now. '];
  if (seesEveryone(state.me?.role)) {
    parts.push(el('a', { id: 'watch-live', href: `/sessions/${id}/live` }, 'Watch it live'), ' or ');
  }
  parts.push(el('button', { id: 'reload', type: 'button', className: 'secondary small', onclick: load }, 'Reload the recording'));
  return parts;
}

function renderTitle(row) {
  const title = document.getElementById('title');
  title.replaceChildren(`${row.user}@${row.container_name} `, badge(row.status));
  document.title = `Replay ${row.user}@${row.container_name} · Entry`;
}

function badge(status) {
  return el('span', { className: `badge badge-${status}` }, status);
}

/** Quotes a command's words for display the way a shell would need them. */
function shellWords(words) {
  return words.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/**
 * Who the exec ran as: the user asked for (`-u`), else the container's configured user; an
 * empty user is the image's default, root. Rows of older gateways say nothing (null).
 */
function execUser(row) {
  const effective = row.exec_user_effective;
  if (effective === null || effective === undefined) return null;
  const shown = effective === '' ? 'root (image default)' : effective;
  const how = row.exec_user ? 'asked with -u' : "the container's user";
  return [el('code', {}, shown), ` (${how})`];
}

/** The working directory asked for (`-w`), else the container's own (on rows that record it). */
function workdir(row) {
  if (row.workdir) return el('code', {}, row.workdir);
  return row.exec_user_effective === null || row.exec_user_effective === undefined ? null : "(the container's)";
}

/** The variables the client added, one `NAME=value` per line; secret values are redacted. */
function execEnv(env) {
  if (env === null || env === undefined) return null;
  const entries = Object.entries(env);
  if (entries.length === 0) return 'none added';
  return el('ul', { className: 'env' }, ...entries.map(([name, value]) => el('li', {}, el('code', {}, `${name}=${value}`))));
}

/** Appends `value` (a node, text, or an array of them) to a `dd`. */
function fill(dd, value) {
  dd.append(...(Array.isArray(value) ? value : [value]));
  return dd;
}

const size = (cols, rows) => (cols && rows ? `${cols}×${rows}` : null);
const bytes = (count) => (count === null || count === undefined ? null : el('span', { title: `${count} bytes` }, formatBytes(count)));

/** The session's metadata as a definition list; absent values show as "—". */
function renderMeta(row) {
  const items = [
    ['Session', el('code', {}, row.id)],
    ['User', row.user],
    ['Role', row.role],
    ['Token', row.token_id ? el('code', {}, row.token_id) : null],
    ['Container', row.container_name],
    ['Container id', el('code', { title: row.container_id }, row.container_id.slice(0, 12))],
    ['Image', row.container_image],
    ['Command', row.command?.length ? el('code', {}, shellWords(row.command)) : '(default shell)'],
    ['TTY', row.tty ? 'yes' : 'no'],
    ['Exec user', execUser(row)],
    ['Working directory', workdir(row)],
    ['Environment', execEnv(row.exec_env)],
    ['Node', row.node_id],
    ['Client', row.client_kind],
    ['Source address', row.source_addr],
    ['Started', formatTime(row.started_at)],
    ['Ended', row.ended_at ? formatTime(row.ended_at) : null],
    ['Duration', formatDuration(sessionDuration(row)) + (row.ended_at ? '' : ' so far')],
    ['Status', badge(row.status)],
    ['Close reason', row.close_reason],
    ['Close detail', row.close_detail],
    ['Exit code', row.exit_code],
    ['Terminal', [size(row.initial_cols, row.initial_rows), size(row.last_cols, row.last_rows)].filter(Boolean).join(' → ') || null],
    ['Bytes in', bytes(row.bytes_in)],
    ['Bytes out', bytes(row.bytes_out)],
    ['Recording size', bytes(row.recording_size)],
    ['Recording SHA-256', row.recording_sha256 ? el('code', { className: 'hash' }, row.recording_sha256) : null],
    ['Recording error', row.recording_error],
    ['Reaper status', row.reap_status],
    ['Reaper killed', row.reap_killed],
    ['Reaper detail', row.reap_detail],
  ];
  const list = document.getElementById('meta');
  list.replaceChildren();
  for (const [term, value] of items) {
    const empty = value === null || value === undefined || value === '';
    list.append(el('dt', {}, term), fill(el('dd', { className: empty ? 'none' : null }), empty ? '—' : value));
  }
}

async function main() {
  const download = document.getElementById('download');
  download.href = `/api/v1/sessions/${id}/recording`;
  download.download = `${id}.cast`;
  const raw = document.getElementById('download-raw');
  raw.href = `/api/v1/sessions/${id}/recording?raw=true`;
  raw.download = `${id}.cast.gz`;
  try {
    state.me = await initHeader('sessions');
  } catch (error) {
    showError(describeError(error, 'find out who is signed in'));
    return;
  }
  await load();
}

main();
