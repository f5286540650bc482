// Commands that matched a command rule (`GET /api/v1/alerts`), as the sessions, live watch
// and alerts pages show them: their outcome and action labels, and for a command held for
// review (outcome `pending`) the admin's Approve and Deny buttons
// (`POST /api/v1/reviews/<id>/approve` and `/deny`).
//
// A command is text a user typed: it is only ever inserted as text.

import './reviews.css';
import { api, describeError, query } from './api.js';
import { el } from './dom.js';
import { formatTime } from './format.js';

/** Every outcome a hit can have, in the order the filters offer them. */
export const OUTCOMES = ['pending', 'notified', 'blocked', 'approved', 'denied', 'timed_out', 'cancelled', 'killed', 'ended'];

/** What an outcome means, as its label's tooltip. */
const OUTCOME_TITLES = {
  notified: 'It ran; the rule’s hit was notified',
  blocked: 'It never reached the shell',
  pending: 'It waits for an admin’s decision',
  approved: 'An admin approved it and it ran',
  denied: 'An admin denied it; it never ran',
  timed_out: 'Nobody decided in time; it never ran',
  cancelled: 'The user cancelled it (Ctrl-C) while it waited',
  killed: 'The rule ended the session instead of running it',
  ended: 'The session ended while it waited; it never ran',
};

/** An outcome as a small label: "timed out", "approved"… */
export function outcomeLabel(outcome) {
  const known = OUTCOMES.includes(outcome) ? outcome : 'other';
  return el(
    'span',
    { className: `outcome outcome-${known}`, title: OUTCOME_TITLES[outcome] ?? null },
    String(outcome ?? '').replaceAll('_', ' '),
  );
}

/** A rule's action (notify, review, block, kill) as a small label. */
export function actionLabel(action) {
  const known = ['notify', 'review', 'block', 'kill'].includes(action) ? action : 'other';
  return el('span', { className: `rule-action rule-action-${known}` }, String(action ?? ''));
}

/** Whether `me` ({user, role}) may approve or deny `hit`: admins, and never their own command. */
export function mayDecide(me, hit) {
  return me?.role === 'admin' && hit.outcome === 'pending' && hit.user !== me.user;
}

/** The commands held for review, newest first; `session` limits them to one session. */
export async function fetchPending(session) {
  const page = await api('/api/v1/alerts' + query({ session, outcome: 'pending', limit: 1000 }));
  return page.hits;
}

/**
 * Approve and Deny buttons for a held command. A click disables both, sends the decision,
 * then calls `onDecided(settledHit, verdict)` or, when the API refuses (another admin was
 * first, the review timed out), `onFailed(message)` and enables them again.
 */
export function decisionButtons(hit, { onDecided, onFailed }) {
  const approve = el('button', { type: 'button', className: 'approve small' }, 'Approve');
  const deny = el('button', { type: 'button', className: 'deny danger small' }, 'Deny');
  const decide = async (verdict) => {
    approve.disabled = true;
    deny.disabled = true;
    try {
      const answer = await api(`/api/v1/reviews/${encodeURIComponent(hit.id)}/${verdict}`, { method: 'POST' });
      onDecided(answer.hit, verdict);
    } catch (error) {
      onFailed(describeError(error, `${verdict} this command`));
      approve.disabled = false;
      deny.disabled = false;
    }
  };
  approve.addEventListener('click', () => decide('approve'));
  deny.addEventListener('click', () => decide('deny'));
  return el('span', { className: 'decision' }, approve, deny);
}

/** One line saying what was decided, for the page's notice box. */
export function decisionText(hit, verdict) {
  const done = verdict === 'approve' ? 'approved' : 'denied';
  const by = hit.decided_by ? `${hit.decided_by} ${done}` : `You ${done}`;
  return `${by} ${hit.user}’s command in ${hit.container}: ${hit.command}`;
}

/**
 * Keeps `list` (a <ul>) showing the held commands `hits`, one <li data-hit-id> each. Items
 * already shown are kept as they are, so a refresh never replaces a button under the
 * pointer. Options: `me` ({user, role}), `sessionLinks` (also link each to its session's
 * live page), and `onDecided` / `onFailed` for the buttons (see decisionButtons).
 */
export function showPending(list, hits, { me, sessionLinks = false, onDecided, onFailed }) {
  const shown = new Map([...list.children].map((item) => [item.dataset.hitId, item]));
  const items = hits.map((hit) => shown.get(hit.id) ?? pendingItem(hit, { me, sessionLinks, onDecided, onFailed }));
  const same = items.length === list.children.length && items.every((item, i) => list.children[i] === item);
  if (!same) list.replaceChildren(...items);
}

function pendingItem(hit, { me, sessionLinks, onDecided, onFailed }) {
  const who = [`${hit.user}@${hit.container}`, ` · held since ${formatTime(hit.at)}`];
  const links = sessionLinks
    ? el(
        'span',
        { className: 'review-links' },
        el('a', { href: `/sessions/${encodeURIComponent(hit.session_id)}/live`, className: 'watch' }, 'Watch'),
      )
    : null;
  let decision;
  if (mayDecide(me, hit)) decision = decisionButtons(hit, { onDecided, onFailed });
  else if (me?.role === 'admin') decision = el('span', { className: 'subtle' }, 'your own command: another admin decides');
  else decision = el('span', { className: 'subtle' }, 'waiting for an admin');
  return el(
    'li',
    { className: 'review', dataset: { hitId: hit.id, sessionId: hit.session_id } },
    el(
      'div',
      { className: 'review-what' },
      el('span', { className: 'review-rule', title: 'The rule that holds it' }, `rule ${hit.rule}`),
      el('code', { className: 'review-command' }, hit.command),
    ),
    el('div', { className: 'review-who subtle' }, ...who),
    links,
    el('div', { className: 'review-actions' }, decision),
  );
}
