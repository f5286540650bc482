// Share links on the replay page: for auditors and admins, on a finished session with a stored
// recording, a Share button that opens a small form (how long the link works, and optionally up
// to which second it shows the session), creates the link through the API (the same `api()` as
// every change of the pages, so the gateway's origin rule holds) and shows it, with a Copy
// button and its expiry. The link's secret is in its fragment and is shown this once; every
// string is inserted as text.

import { api, describeError } from './api.js';
import { formatTime } from './format.js';
import { seesEveryone } from './header.js';

const $ = (id) => document.getElementById(id);

/** Shows the Share button when `role` may share `row` (finished, recording stored). */
export function renderShare(row, role) {
  const ended = row && row.status !== 'live' && row.status !== 'finalising';
  const may = Boolean(row?.recording_location) && ended && seesEveryone(role);
  $('share').hidden = !may;
  if (!may) $('share-box').hidden = true;
}

/** Wires the Share button and its form for session `id`. */
export function initShare(id) {
  const box = $('share-box');
  const form = $('share-form');
  const result = $('share-result');
  const message = $('share-error');
  $('share').addEventListener('click', () => {
    box.hidden = !box.hidden;
    form.hidden = false;
    result.hidden = true;
    message.textContent = '';
  });
  $('share-cancel').addEventListener('click', () => (box.hidden = true));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.textContent = '';
    const body = { expires_in: $('share-expiry').value };
    const until = $('share-until').value.trim();
    if (until !== '') body.until = Number(until);
    try {
      const created = await api(`/api/v1/sessions/${id}/shares`, { method: 'POST', body });
      $('share-link').value = location.origin + created.url;
      $('share-expires').textContent = `Expires at ${formatTime(created.expires_at)}.`;
      $('share-copied').textContent = '';
      form.hidden = true;
      result.hidden = false;
    } catch (error) {
      message.textContent = describeError(error, 'share this session');
    }
  });
  $('share-copy').addEventListener('click', async () => {
    const link = $('share-link');
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(link.value);
      $('share-copied').textContent = 'Copied.';
    } catch {
      link.select();
      $('share-copied').textContent = 'Select the link and copy it.';
    }
  });
}
