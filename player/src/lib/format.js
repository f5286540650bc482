// Formatting of durations, sizes and times for display, and conversions for form inputs.

const pad = (number, width = 2) => String(number).padStart(width, '0');

/** A duration in milliseconds as "45s", "2m 03s", "1h 02m 03s" or "3d 04h 05m". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (days > 0) return `${days}d ${pad(hours)}h ${pad(minutes)}m`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s`;
  if (minutes > 0) return `${minutes}m ${pad(seconds)}s`;
  return `${seconds}s`;
}

/** How long a session lasted: ended − started, or now − started while it has not ended. */
export function sessionDuration(session, now = Date.now()) {
  const end = session.ended_at ?? now;
  return end - session.started_at;
}

/** A byte count in binary units: "512 B", "1.2 KiB", "3.4 MiB", "1.0 GiB". */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Unix milliseconds as local time, "2024-05-01 14:03:22" (sortable, unambiguous). */
export function formatTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const date = new Date(ms);
  return `${formatDate(date)} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function formatDate(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** Unix milliseconds as the value of a `datetime-local` input ("2024-05-01T14:03"). */
export function toDatetimeLocal(ms) {
  if (ms === null || ms === undefined || ms === '' || !Number.isFinite(Number(ms))) return '';
  const date = new Date(Number(ms));
  return `${formatDate(date)}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The value of a `datetime-local` input (local time) as unix milliseconds, or '' if empty. */
export function fromDatetimeLocal(value) {
  if (!value) return '';
  const ms = new Date(value).getTime(); // a date-time without offset is local time
  return Number.isFinite(ms) ? ms : '';
}

/**
 * Seconds from a session's start as "m:ss" ("0:07", "12:34"), or "h:mm:ss" from an hour on
 * (the times of a session's commands).
 */
export function formatOffset(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const total = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  return hours > 0 ? `${hours}:${pad(minutes)}:${pad(rest)}` : `${minutes}:${pad(rest)}`;
}
