// Container list (/containers, developers and admins): the containers the signed-in user may
// enter, running or not, by Compose address then name, with a link that opens a web terminal
// (/terminal?container=…) in each running one. Auditors never enter containers: the API
// refuses them the list and the page says so.

import './containers.css';
import { api, describeError, query } from './lib/api.js';
import { clearError, el, showError } from './lib/dom.js';
import { initHeader } from './lib/header.js';

const tbody = document.querySelector('#containers tbody');
const refreshButton = document.getElementById('refresh');

/** What a terminal is opened with: the Compose address when there is one, else the name. */
function target(container) {
  return container.address || container.name;
}

/** Loads the list and replaces the table. */
async function load() {
  refreshButton.disabled = true;
  let containers;
  try {
    containers = await api('/api/v1/containers');
    clearError();
  } catch (error) {
    showError(describeError(error, 'list containers'));
    tbody.replaceChildren(emptyRow('No containers to show'));
    return;
  } finally {
    refreshButton.disabled = false;
  }
  if (containers.length === 0) {
    tbody.replaceChildren(emptyRow('There is no container you may enter'));
  } else {
    tbody.replaceChildren(...containers.map(renderRow));
  }
}

function emptyRow(text) {
  return el('tr', {}, el('td', { colspan: 5, className: 'empty' }, text));
}

/** One container as a table row; only running ones get a terminal link. */
function renderRow(container) {
  const open = container.running
    ? el('a', { className: 'open', href: '/terminal' + query({ container: target(container) }) }, 'Open terminal')
    : el('span', { className: 'subtle' }, 'not running');
  return el(
    'tr',
    { dataset: { container: target(container), state: container.state } },
    el('td', {}, container.address ?? '—'),
    el('td', { title: container.id }, container.name),
    el('td', { className: 'image' }, container.image),
    el('td', {}, el('span', { className: `badge badge-${container.state}` }, container.state)),
    el('td', {}, open),
  );
}

refreshButton.addEventListener('click', load);

async function main() {
  try {
    await initHeader('containers');
  } catch (error) {
    showError(describeError(error, 'find out who is signed in'));
    return;
  }
  await load();
}

main();
