// Replay page (/sessions/<id>[?t=SECONDS]): the session's recording in asciinema-player, with
// markers at resizes, marker events and the exit, a choice of idle-time limit and speed,
// download links, a legal hold's banner with Hold and Release buttons (lib/hold.js), a Share
// button (lib/share.js), the session's commands (click one to go there; the one playing is
// marked `current`) and its metadata beside it. `?t=` (seconds from the session's start, as
// search hits give them) opens the recording paused at that moment.
//
// The recording is replayed segment by segment (the player's `format: 'segmented'`), so what
// the page costs does not grow with the recording: the gateway's index lists the segments,
// the player fetches each as it needs it. The page fetches the index once per load (every
// fetch is audited) and hands the player a Blob URL of the same JSON. The gateway cuts idle
// gaps to the chosen limit itself and its index says which gaps it cut: times of the API
// (`?t=`, a command's `at`) are on the session's own timeline, and are converted to and from
// the player's (lib/timeline.js).

import 'asciinema-player/dist/bundle/asciinema-player.css';
import './replay.css';
import * as AsciinemaPlayer from 'asciinema-player';
import { api, describeError, query, sessionIdFromPath } from './lib/api.js';
import { el, showError, showNotice } from './lib/dom.js';
import { formatOffset } from './lib/format.js';
import { initHeader, seesEveryone } from './lib/header.js';
import { initHold, renderHold } from './lib/hold.js';
import { initShare, renderShare } from './lib/share.js';
import { badge, containerOf, renderMeta } from './lib/session-meta.js';
import { toPlayerTime, toSessionTime } from './lib/timeline.js';

const id = sessionIdFromPath();
const idleSelect = document.getElementById('idle');
const speedSelect = document.getElementById('speed');
const box = document.getElementById('player');
const commandList = document.getElementById('commands');

/** How often the current command is looked up while the page is open. */
const TRACK_MS = 250;
/**
 * Added to a position given on the session's timeline before seeking, so that the frame shown
 * has the event at exactly that time (the player counts milliseconds, the index seconds, and
 * they may round differently).
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
  row: null, // the session's row, as last loaded
  index: null, // the segmented index the player was made from (times on the player's timeline)
  indexUrl: null, // the Blob URL of that index given to the player, revoked with it
  player: null,
  playing: false,
  start: startFromLocation(), // `?t=`: where to open, on the session's timeline, or null
  commands: [], // the session's commands, in order
  commandItems: [], // their <li> elements, in the same order
  current: -1, // the index of the command marked current, -1 for none
  loads: 0, // bumped by every load(), so late answers of an older one are dropped
  fetches: 0, // bumped by every fetch of the index, so late answers of an older one are dropped
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

/** The idle gaps `index` cut and its limit: `[gaps, limit]` (`[[], null]` without a limit). */
function cutOf(index) {
  return [index.entry?.gaps ?? [], index.entry?.idle_limit ?? null];
}

/** A time on the session's timeline as a position on `index`'s (idle gaps cut). */
function playerTime(sessionSeconds, index = state.index) {
  return toPlayerTime(...cutOf(index), sessionSeconds) + SEEK_NUDGE;
}

/** Where the player is, in seconds from the session's start; null without a player. */
function sessionTime() {
  if (!state.player || !state.index) return null;
  return toSessionTime(...cutOf(state.index), state.player.getCurrentTime() || 0);
}

/** The idle-time limit chosen, in seconds; null for none. */
function chosenIdle() {
  const chosen = Number.parseFloat(idleSelect.value);
  return Number.isFinite(chosen) ? chosen : null;
}

/** Fetches the session's segmented index with the chosen idle-time limit. */
function fetchIndex() {
  return api(`/api/v1/sessions/${id}/segments${query({ idle: chosenIdle() })}`);
}

/**
 * A Blob URL of `index` for the player. Its segment URLs are made absolute first: the player
 * resolves them against the index's URL, and a path cannot be resolved against a blob: URL.
 */
function blobUrlOf(index) {
  const segments = index.segments.map((segment) => ({ ...segment, url: new URL(segment.url, location.href).href }));
  const json = JSON.stringify({ ...index, segments });
  return URL.createObjectURL(new Blob([json], { type: 'application/json' }));
}

/**
 * (Re)creates the player from the current index and speed, at `position` (seconds on the
 * player's own timeline, i.e. with idle gaps already cut), paused unless `play` is true.
 * `startAt` (the player's own start option, on its timeline too) is given with the same
 * `position` when the page opens at `?t=`. The index's markers are the player's: the
 * segmented loader takes no `markers` (nor `idleTimeLimit`) option.
 */
function createPlayer(position = 0, play = false, startAt = undefined) {
  removePlayer();
  const url = blobUrlOf(state.index);
  const player = AsciinemaPlayer.create({ url, format: 'segmented' }, box, {
    preload: true,
    controls: true, // always shown: play/pause, the seek bar with its markers
    fit: 'both',
    speed: Number.parseFloat(speedSelect.value) || 1,
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
  state.indexUrl = url;
  window.entryPlayer = player;
  window.entryMarkers = state.index.markers ?? []; // [time, label] pairs, as given to the player
  window.entrySessionTime = sessionTime; // for tests: the position on the session's timeline
  window.entryIndex = state.index; // for tests: the segmented index, as the gateway sent it
}

/** Removes the player, if any, and shows `message` in its box instead. */
function removePlayer(message) {
  state.player?.dispose();
  if (state.indexUrl) URL.revokeObjectURL(state.indexUrl);
  state.player = null;
  state.indexUrl = null;
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
// dead black box (clearErrors() shows it again, as it clears older errors).
const WASM_BLOCKED =
  "The player cannot run: this gateway's Content-Security-Policy does not allow WebAssembly " +
  "(script-src 'wasm-unsafe-eval'), which asciinema-player needs. The recording can still be downloaded.";
let wasmBlocked = false;
document.addEventListener('securitypolicyviolation', (event) => {
  if (event.blockedURI !== 'wasm-eval') return;
  wasmBlocked = true;
  showError(WASM_BLOCKED);
});

/** Clears the `#error` box of older errors (not of the player being blocked). */
function clearErrors() {
  showError(wasmBlocked ? WASM_BLOCKED : '');
}

/** Recreates the player at the new speed, at the same position. */
function speedChanged() {
  if (!state.player || !state.index) return;
  createPlayer(state.player.getCurrentTime() || 0, state.playing);
}

/**
 * Fetches the index with the new idle-time limit and recreates the player at the same moment
 * of the session: its position is converted from the old index's timeline to the new one's.
 */
function idleChanged() {
  loadRecording(Boolean(state.player && state.index));
}

idleSelect.addEventListener('change', idleChanged);
speedSelect.addEventListener('change', speedChanged);

/** Loads (or reloads) the session's row, commands and recording, and shows them. */
async function load() {
  const loading = ++state.loads;
  clearErrors();
  let row;
  try {
    row = await api(`/api/v1/sessions/${id}`);
  } catch (error) {
    if (loading !== state.loads) return;
    ++state.fetches; // an index still on its way is of no use now
    state.index = null;
    showError(describeError(error, 'see this session'));
    removePlayer('No recording to show.');
    renderCommandsMessage('No commands to show.');
    return;
  }
  if (loading !== state.loads) return;
  state.row = row;
  renderTitle(row);
  renderMeta(row, document.getElementById('meta'));
  renderHold(row, state.me?.role);
  renderShare(row, state.me?.role);
  loadCommands(loading);
  await loadRecording(false);
}

/**
 * Fetches the index with the chosen idle-time limit and makes the player from it. With `keep`,
 * the player goes on at the moment of the session the one it replaces was at (and plays on
 * if it played), and a refusal leaves that one as it was; else it opens at `?t=` (paused) or
 * at the start.
 */
async function loadRecording(keep) {
  const fetching = ++state.fetches;
  let index;
  try {
    index = await fetchIndex();
  } catch (error) {
    if (fetching === state.fetches) recordingRefused(error, keep);
    return;
  }
  if (fetching !== state.fetches) return;
  const at = keep && state.player ? sessionTime() : null;
  const play = keep && state.playing;
  if (keep) clearErrors();
  state.index = index;
  showNotice(...(index.entry?.running ? runningNotice() : []));
  if (!Array.isArray(index.segments) || index.segments.length === 0) {
    removePlayer('The recording has no output yet.');
  } else if (at !== null) {
    createPlayer(playerTime(at), play);
  } else if (state.start !== null) {
    const start = playerTime(state.start + START_SLACK);
    createPlayer(start, false, start);
  } else {
    createPlayer();
  }
}

/**
 * Shows why the index was refused. A recording not ready (a session still running on another
 * node of the gateway, or that has printed nothing yet) is a notice with Reload, not an error.
 * With `keep`, the player shown stays, and the idle select goes back to its limit.
 */
function recordingRefused(error, keep) {
  if (keep && state.player && state.index) {
    showError(describeError(error, 'load the recording'));
    const limit = cutOf(state.index)[1];
    idleSelect.value = limit === null ? '' : String(limit);
    return;
  }
  state.index = null;
  if (error.status === 409 && error.code === 'recording_not_ready') {
    showNotice(...reloadNotice(`The recording is not ready: ${error.message}. `, state.row?.status === 'live'));
    removePlayer('The recording has no output yet.');
    return;
  }
  showNotice();
  showError(describeError(error, 'load the recording'));
  removePlayer('No recording to show.');
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
  if (!state.player || !state.index) return;
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
function runningNotice() {
  return reloadNotice('This session is still running: replay shows it up to now. ', true);
}

/**
 * A notice about a recording that will grow: `lead`, a link to watch the session live
 * (auditors and admins, when `live`), and a button that loads the page's data again.
 */
function reloadNotice(lead, live) {
  const parts = [lead];
  if (live && seesEveryone(state.me?.role)) {
    parts.push(el('a', { id: 'watch-live', href: `/sessions/${id}/live` }, 'Watch it live'), ' or ');
  }
  parts.push(el('button', { id: 'reload', type: 'button', className: 'secondary small', onclick: load }, 'Reload the recording'));
  return parts;
}

function renderTitle(row) {
  const title = document.getElementById('title');
  title.replaceChildren(`${row.user}@${containerOf(row)} `, badge(row.status));
  document.title = `Replay ${row.user}@${containerOf(row)} · Entry`;
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
  initHold(id, load);
  initShare(id);
  setInterval(trackCurrent, TRACK_MS);
  await load();
}

main();
