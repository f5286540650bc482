// A session's metadata as the replay page shows it beside the player: a definition list of
// who, where, what and how it ended, from the API's session row. Text from the row is only
// ever inserted as text.

import { el } from './dom.js';
import { formatBytes, formatDuration, formatTime, sessionDuration } from './format.js';

/** A session status as a badge. */
export function badge(status) {
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

/** The session's container as people name it: `engine/name` unless its engine is the one
 * engine of a gateway that has only one (`local`). */
export function containerOf(row) {
  return row.engine && row.engine !== 'local' ? `${row.engine}/${row.container_name}` : row.container_name;
}

/** Fills `list` (a `dl`) with the session's metadata; absent values show as "—". */
export function renderMeta(row, list) {
  const items = [
    ['Session', el('code', {}, row.id)],
    ['User', row.user],
    ['Role', row.role],
    ['Token', row.token_id ? el('code', {}, row.token_id) : null],
    ['Container', row.container_name],
    ['Engine', row.engine],
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
    ['Legal hold', row.hold ? `${row.hold.reason} (by ${row.hold.by}, ${formatTime(row.hold.at)})` : null],
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
  list.replaceChildren();
  for (const [term, value] of items) {
    const empty = value === null || value === undefined || value === '';
    list.append(el('dt', {}, term), fill(el('dd', { className: empty ? 'none' : null }), empty ? '—' : value));
  }
}
