// Legal hold on the replay page: a banner saying who held the session, when and why (as text
// only: a reason is never parsed as HTML), and for auditors and admins a Hold button that asks
// for the reason and a Release button. A session still running cannot be held (the API says
// so); the buttons follow the row as last loaded.

import { api, describeError } from './api.js';
import { el, showError, showNotice } from './dom.js';
import { formatTime } from './format.js';
import { seesEveryone } from './header.js';

const banner = () => document.getElementById('hold-banner');
const holdButton = () => document.getElementById('hold');
const releaseButton = () => document.getElementById('release');
const dialog = () => document.getElementById('hold-dialog');

/** Shows `row`'s hold (or none), and the buttons `role` may use. */
export function renderHold(row, role) {
  const hold = row?.hold;
  const box = banner();
  if (hold) {
    box.replaceChildren(
      el('strong', {}, 'On legal hold'),
      ` since ${formatTime(hold.at)} by `,
      el('span', { className: 'by' }, hold.by),
      ': ',
      el('span', { className: 'reason' }, hold.reason),
      '. Retention never deletes it while it is held.',
    );
  } else {
    box.replaceChildren();
  }
  box.hidden = !hold;
  const may = Boolean(row) && seesEveryone(role);
  const ended = row && row.status !== 'live' && row.status !== 'finalising';
  holdButton().hidden = !(may && ended && !hold);
  releaseButton().hidden = !(may && hold);
}

/** Wires the buttons and the dialog for session `id`; `reload` loads the page's data again. */
export function initHold(id, reload) {
  const ask = dialog();
  const reason = document.getElementById('hold-reason');
  holdButton().addEventListener('click', () => {
    reason.value = '';
    ask.returnValue = '';
    ask.showModal();
  });
  ask.addEventListener('close', async () => {
    if (ask.returnValue !== 'hold') return;
    try {
      await api(`/api/v1/sessions/${id}/hold`, { method: 'POST', body: { reason: reason.value } });
      showError('');
      showNotice('The session is on legal hold.');
    } catch (error) {
      showError(describeError(error, 'put this session on hold'));
    }
    reload();
  });
  releaseButton().addEventListener('click', async () => {
    try {
      await api(`/api/v1/sessions/${id}/release`, { method: 'POST' });
      showError('');
      showNotice('The legal hold is released: the session expires as any other.');
    } catch (error) {
      showError(describeError(error, 'release this session'));
    }
    reload();
  });
}
