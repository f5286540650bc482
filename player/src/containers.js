// Container list (/containers, developers and admins): the containers the signed-in user may
// enter, running or not, by Compose address then name, with a link that opens a web terminal
// (/terminal?container=…) in each running one. Auditors never enter containers: the API
// refuses them the list and the page says so.
//
// With more than one engine (Docker endpoint) behind the gateway, each row names its engine
// and its terminal link opens `engine/address-or-name`; with one engine the page is as it was,
// the link the bare address or name. An engine that is down is named in a warning above the
// table, while the containers of the engines that answered are listed.

import './containers.css';
import { api, describeError, query } from './lib/api.js';
import { clearError, el, showError } from './lib/dom.js';
import { initHeader } from './lib/header.js';

const tbody = document.querySelector('#containers tbody');
const engineHeader = document.querySelector('#containers th.engine-col');
const enginesDown = document.getElementById('engines-down');
const refreshButton = document.getElementById('refresh');

/** The container as its engine knows it: the Compose address when there is one, else the name. */
function target(container) {
  return container.address || container.name;
}

/** What a terminal is opened with: `engine/target` when the gateway has several engines. */
function terminalTarget(container, multi) {
  return multi ? `${container.engine}/${target(container)}` : target(container);
}

/** Loads the list and replaces the table. */
async function load() {
  refreshButton.disabled = true;
  let list;
  try {
    list = await api('/api/v1/containers');
    clearError();
  } catch (error) {
    showError(describeError(error, 'list containers'));
    showEnginesDown([]);
    tbody.replaceChildren(emptyRow('No containers to show', engineHeader.hidden ? 5 : 6));
    return;
  } finally {
    refreshButton.disabled = false;
  }
  const containers = list?.containers ?? [];
  const engines = list?.engines ?? [];
  const multi = engines.length > 1;
  const down = engines.filter((engine) => engine.state === 'down');
  engineHeader.hidden = !multi;
  showEnginesDown(down);
  const columns = multi ? 6 : 5;
  if (containers.length === 0) {
    const where = down.length > 0 ? ' on the engines that answered' : '';
    tbody.replaceChildren(emptyRow(`There is no container you may enter${where}`, columns));
  } else {
    tbody.replaceChildren(...containers.map((container) => renderRow(container, multi)));
  }
}

/** Names each engine that is down, one line each, above the table; none hides the box. */
function showEnginesDown(down) {
  const line = (engine) => `Engine ${engine.name} is down${engine.detail ? `: ${engine.detail}` : ''}`;
  enginesDown.replaceChildren(...down.map((engine) => el('div', { dataset: { engine: engine.name } }, line(engine))));
  enginesDown.hidden = down.length === 0;
}

function emptyRow(text, columns) {
  return el('tr', {}, el('td', { colspan: columns, className: 'empty' }, text));
}

/** One container as a table row; only running ones get a terminal link. */
function renderRow(container, multi) {
  const open = container.running
    ? el(
        'a',
        { className: 'open', href: '/terminal' + query({ container: terminalTarget(container, multi) }) },
        'Open terminal',
      )
    : el('span', { className: 'subtle' }, 'not running');
  const dataset = { container: target(container), state: container.state };
  if (container.engine) dataset.engine = container.engine;
  return el(
    'tr',
    { dataset },
    multi ? el('td', { className: 'engine' }, container.engine ?? '—') : null,
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
