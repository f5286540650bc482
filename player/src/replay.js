// Replay page (/sessions/<id>[?t=SECONDS]): the session's recording in asciinema-player, with
// markers at resizes and at the exit, a choice of idle-time limit and speed, download links,
// the session's commands (click one to go there; the one playing is marked `current`) and its
// metadata beside it. `?t=` (seconds from the session's start, as search hits give them) opens
// the recording paused at that moment.
//
// Times of the API (`?t=`, a command's `at`) are on the session's own timeline; the player's
// are on the timeline with idle gaps cut to the idle-time limit, so they are converted.

import 'asciinema-player/dist/bundle/asciinema-player.css';
import './replay.css';
import * as AsciinemaPlayer from 'asciinema-player';
import { api, describeError, request, sessionIdFromPath } from './lib/api.js';
import { compressedTime, markersOf, originalTime, parseAsciicast } from './lib/asciicast.js';
import { el, showError, showNotice } from './lib/dom.js';
import { formatBytes, formatDuration, formatOffset, formatTime, sessionDuration } from './lib/format.js';
import { initHeader, seesEveryone } from './lib/header.js';

const id = sessionIdFromPath();
const idleSelect = document.getElementById('idle');
const speedSelect = document.getElementById('speed');
const box = document.getElementById('player');
const commandList = document.getElementById('commands');

/** How often the current command is looked up while the page is open. */
const TRACK_MS = 250;
/**
 * Added to a position given on the session's timeline before seeking, so that the frame shown
 * has the event at exactly that time (the player and this page compute the cut timeline in
 * different units, and may round differently).
 */
const SEEK_NUDGE = 1e-6;
/**
 * How far past `?t=` the replay opens. Search hits give their times in milliseconds, rounded,
 * and measured by the command index, whose clock may run a few milliseconds behind the
 * recording's: the frame a moment later is the one that shows what the hit found.
 */
const START_SLACK = 0.1;

const state = {
  me: null,
  recording: null, // {header, events, text} from parseAsciicast
  player: null,
  limit: Infinity, // the idle-time limit the player was created with
  playing: false,
  start: startFromLocation(), // `?t=`: where to open, on the session's timeline, or null
  commands: [], // the session's commands, in order
  commandItems: [], // their <li> elements, in the same order
  current: -1, // the index of the command marked current, -1 for none
  loads: 0, // bumped by every load(), so late answers of an older one are dropped
};

/**
 * `?t=SECONDS`: where the replay opens, in seconds from the session's start; null (the start)
 * when absent, not a number, negative or zero.
 */
function startFromLocation() {
  const raw = new URLSearchParams(location.search).get('t');
  if (raw === null || raw.trim() === '') return null;
  const t = Number(raw);
  return Number.isFinite(t) && t > 0 ? t : null;
}

/** A time on the session's timeline as a position on the player's (idle gaps cut). */
function playerTime(sessionSeconds) {
  return compressedTime(state.recording.events, state.limit, sessionSeconds) + SEEK_NUDGE;
}

/** Where the player is, in seconds from the session's start; null without a player. */
function sessionTime() {
  if (!state.player || !state.recording) return null;
  return originalTime(state.recording.events, state.limit, state.player.getCurrentTime() || 0);
}

/** The idle-time limit in force: the select's, else the recording's own, else none. */
function idleLimit() {
  const chosen = Number.parseFloat(idleSelect.value);
  if (Number.isFinite(chosen)) return chosen;
  return state.recording?.header.idle_time_limit ?? Infinity;
}

/**
 * (Re)creates the player with the current options, at `position` (seconds on the player's
 * own timeline, i.e. with idle gaps already cut), paused unless `play` is true. `startAt`
 * (seconds on the session's timeline) is the player's own start option, given with the
 * matching `position` when the page opens at `?t=`.
 */
function createPlayer(position = 0, play = false, startAt = undefined) {
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
    startAt,
    logger: playerLogger,
  });
  player.addEventListener('playing', () => (state.playing = true));
  player.addEventListener('pause', () => (state.playing = false));
  player.addEventListener('ended', () => (state.playing = false));
  // Commands wait for the player to load, and run in order. A start position is sought even
  // with `startAt`, which only takes effect on play: the frame at that moment shows at once.
  if (position > 0) player.seek(position).then(trackCurrent, () => {});
  if (play) player.play();
  state.player = player;
  state.limit = limit;
  window.entryPlayer = player;
  window.entryMarkers = markers; // [time, label] pairs, as given to the player
  window.entrySessionTime = sessionTime; // for tests: the position on the session's timeline
}

/** Creates the player for a freshly loaded recording: at `?t=` (paused) if given. */
function createFirstPlayer() {
  if (state.start === null) {
    createPlayer();
    return;
  }
  const start = state.start + START_SLACK;
  state.limit = idleLimit();
  createPlayer(playerTime(start), false, start);
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
  const loading = ++state.loads;
  showError(wasmBlocked ? WASM_BLOCKED : '');
  let row;
  try {
    row = await api(`/api/v1/sessions/${id}`);
  } catch (error) {
    showError(describeError(error, 'see this session'));
    removePlayer('No recording to show.');
    renderCommandsMessage('No commands to show.');
    return;
  }
  renderTitle(row);
  renderMeta(row);
  loadCommands(loading);

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
  createFirstPlayer();
}

/**
 * Fetches the session's commands and lists them. A gateway without the command index (older,
 * or the index not built for this session) answers 404: the list says so and the player works
 * as before.
 */
async function loadCommands(loading) {
  let list;
  try {
    list = await api(`/api/v1/sessions/${id}/commands`);
  } catch (error) {
    if (loading !== state.loads) return;
    state.commands = [];
    state.commandItems = [];
    const detail = error.status === 404 ? null : describeError(error, 'load the commands');
    renderCommandsMessage('No command index for this session.', detail);
    return;
  }
  if (loading !== state.loads) return;
  state.commands = (list?.commands ?? []).filter((command) => Number.isFinite(command.at));
  renderCommands();
}

/** The command list replaced by a message (and a detail as its tooltip). */
function renderCommandsMessage(message, detail = null) {
  state.current = -1;
  state.commandItems = [];
  commandList.replaceChildren(el('li', { className: 'placeholder', title: detail }, message));
}

/** Lists the commands: time, text (as text only) and flags; clicking one goes there. */
function renderCommands() {
  state.current = -1;
  if (state.commands.length === 0) {
    renderCommandsMessage('No commands were recorded in this session.');
    return;
  }
  state.commandItems = state.commands.map((command) => {
    const text = command.text
      ? el('code', { className: 'text' }, command.text)
      : el('span', { className: 'text none' }, command.flags?.includes('unechoed') ? '(not echoed)' : '(empty)');
    const flags = (command.flags ?? []).map((flag) => el('span', { className: `flag flag-${flagClass(flag)}` }, String(flag)));
    return el(
      'li',
      { className: 'command', dataset: { at: String(command.at), seq: String(command.seq) } },
      el(
        'button',
        { type: 'button', title: `Go to ${command.at.toFixed(1)} s`, onclick: () => seekTo(command.at) },
        el('span', { className: 'at' }, formatOffset(command.at)),
        text,
        flags.length ? el('span', { className: 'flags' }, ...flags) : null,
      ),
    );
  });
  commandList.replaceChildren(...state.commandItems);
  trackCurrent();
}

/** A flag as a class name (a known one, else "other"). */
function flagClass(flag) {
  return ['paste', 'continued', 'unechoed', 'program'].includes(flag) ? flag : 'other';
}

/** Moves the player to `at` (seconds from the session's start), playing on if it played. */
function seekTo(at) {
  if (!state.player || !state.recording) return;
  state.player.seek(playerTime(at)).then(trackCurrent, () => {});
}

/** Marks the last command run at or before the player's position as `current`. */
function trackCurrent() {
  const time = sessionTime();
  let index = -1;
  if (time !== null) {
    // The position may stop a hair short of a command sought to: allow a millisecond.
    while (index + 1 < state.commands.length && state.commands[index + 1].at <= time + 0.001) index += 1;
  }
  if (index === state.current) return;
  state.commandItems[state.current]?.classList.remove('current');
  state.commandItems[state.current]?.removeAttribute('aria-current');
  state.current = index;
  const item = state.commandItems[index];
  if (!item) return;
  item.classList.add('current');
  item.setAttribute('aria-current', 'true');
  if (state.playing) reveal(item);
}

/** Scrolls the command list (only it, not the page) so that `item` is in view. */
function reveal(item) {
  const top = item.offsetTop; // the list is the items' offset parent (position: relative)
  const bottom = top + item.offsetHeight;
  if (top < commandList.scrollTop) commandList.scrollTop = top;
  else if (bottom > commandList.scrollTop + commandList.clientHeight) commandList.scrollTop = bottom - commandList.clientHeight;
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
    renderCommandsMessage('No commands to show.');
    return;
  }
  setInterval(trackCurrent, TRACK_MS);
  await load();
}

main();
