// Shared session page (/share/#<id>.<secret>): one finished session's recording, opened by a
// share link, for someone without an Entry account. The link's secret is the URL's fragment,
// which the browser never sends to a server; the page sends it only as
// `Authorization: Share <id>.<secret>` to the two share-only endpoints, without cookies. It
// shows who shared the session and until when ("up to T s" when the link is cut there), and
// plays the recording in asciinema-player. An invalid, expired or revoked link gets a message
// and no player. Every string from the API is inserted as text.

import 'asciinema-player/dist/bundle/asciinema-player.css';
import './share.css';
import * as AsciinemaPlayer from 'asciinema-player';
import { el, showError } from './lib/dom.js';
import { formatOffset, formatTime } from './lib/format.js';

const box = document.getElementById('player');
const layout = document.querySelector('.share-layout');

/** What the page says for every refused link: the gateway does not tell which check failed. */
const REFUSED = 'This share link is invalid, has expired or was revoked. Ask whoever shared it for a new one.';

/** The link's secret from the fragment (`#<id>.<secret>`), or null. */
function secretFromLocation() {
  let secret;
  try {
    secret = decodeURIComponent(location.hash.replace(/^#/, '')).trim();
  } catch {
    return null;
  }
  return /^sh[a-z2-9]{10}\.[A-Za-z0-9_-]{43}$/.test(secret) ? secret : null;
}

/** Fetch options that present the link and nothing else (no cookies). */
function fetchOptions(secret) {
  return { credentials: 'omit', cache: 'no-store', headers: { authorization: `Share ${secret}` } };
}

/** Shows `message` in place of the player. */
function refuse(message) {
  showError(message);
  layout.hidden = true;
  document.getElementById('shared').hidden = true;
  document.body.dataset.state = 'refused';
}

/** The session's details as a definition list. */
function renderMeta(session) {
  const rows = [
    ['Session', session.session_id],
    ['User', session.user],
    ['Container', session.container],
    ['Started', formatTime(session.started_at)],
    ['Ended', formatTime(session.ended_at)],
    ['Shared', formatTime(session.shared_at)],
  ];
  if (session.until !== null && session.until !== undefined) {
    rows.push(['Shown up to', `${formatOffset(session.until)} (${session.until} s)`]);
  }
  document.getElementById('meta').replaceChildren(...rows.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
}

/** "Shared by alice until 2026-12-08 09:00:00", and "up to 90 s" when the link is cut. */
function renderSharedBy(session) {
  const line = document.getElementById('shared');
  const parts = [`Shared by ${session.shared_by} until ${formatTime(session.expires_at)}`];
  if (session.until !== null && session.until !== undefined) parts.push(`up to ${session.until} s of the session`);
  line.replaceChildren(el('span', { id: 'shared-by' }, parts.join(', ')));
  line.hidden = false;
}

async function main() {
  const secret = secretFromLocation();
  if (!secret) {
    refuse('This page needs a whole share link (…/share/#sh…). Check that it was copied in full.');
    return;
  }
  let response;
  try {
    response = await fetch('/api/v1/shared/session', fetchOptions(secret));
  } catch (error) {
    refuse(`The gateway could not be reached (${error.message}).`);
    return;
  }
  if (response.status === 401) {
    refuse(REFUSED);
    return;
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).message || message;
    } catch {
      // Not JSON: keep the status line.
    }
    refuse(`The shared session cannot be shown: ${message} (${response.status}).`);
    return;
  }
  const session = await response.json();
  document.getElementById('title').textContent = `Session of ${session.user} in ${session.container}`;
  renderSharedBy(session);
  renderMeta(session);
  box.replaceChildren();
  const source = { url: '/api/v1/shared/recording', fetchOpts: fetchOptions(secret) };
  const player = AsciinemaPlayer.create(source, box, { preload: true, controls: true, fit: 'both', idleTimeLimit: 2 });
  // For tests and the curious: the player, as on the replay page.
  window.entrySharePlayer = player;
  document.body.dataset.state = 'shown';
}

main();
