// Reading asciicast v2 recordings (a JSON header line, then `[time, code, data]` lines) and
// the timeline arithmetic the replay page needs around asciinema-player.
//
// asciinema-player compresses idle gaps (`idleTimeLimit`) before it places markers, so
// marker times must be given on the compressed timeline, and a position kept across a
// change of the limit must be converted. The helpers below do it exactly as the player does.

/**
 * Parses a recording's text. Lines that are not complete JSON are dropped: a recording of a
 * session still running may end in the middle of a line. Returns `{header, events, text}`
 * where `text` is the recording made only of the lines that parsed (what the player gets).
 */
export function parseAsciicast(text) {
  const lines = text.split('\n');
  let header;
  try {
    header = JSON.parse(lines[0]);
  } catch {
    throw new Error('the recording does not start with an asciicast header');
  }
  if (!header || header.version !== 2) throw new Error(`asciicast version ${header?.version} is not supported`);
  const kept = [lines[0]];
  const events = [];
  for (const line of lines.slice(1)) {
    if (!line.startsWith('[')) continue;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      continue;
    }
    if (Array.isArray(event) && event.length >= 3 && typeof event[0] === 'number') {
      events.push(event);
      kept.push(line);
    }
  }
  return { header, events, text: kept.join('\n') + '\n' };
}

/**
 * The time of every event after idle gaps longer than `limit` seconds are cut to `limit`
 * (the player's own rule). `limit` undefined or Infinity keeps the times as they are.
 */
export function compressTimes(events, limit = Infinity) {
  const times = [];
  let previous = 0;
  let shift = 0;
  for (const [time] of events) {
    const gap = time - previous;
    if (gap > limit) shift += gap - limit;
    previous = time;
    times.push(time - shift);
  }
  return times;
}

/**
 * Markers for asciinema-player, on the timeline compressed by `limit`: one at every resize
 * ("resize to 120x40") and one at the exit ("exit 0"), or at the last event ("end") when
 * the recording has no exit event.
 */
export function markersOf(events, limit) {
  const times = compressTimes(events, limit);
  const markers = [];
  let exited = false;
  const last = times.length - 1;
  events.forEach(([, code, data], index) => {
    if (code === 'r') markers.push([times[index], `resize to ${data}`]);
    if (code === 'x') {
      // The player draws no marker at the very end of a recording, where the exit usually
      // is; the exit changes nothing on screen, so its marker goes just before it, after
      // every earlier event.
      const previous = index > 0 ? times[index - 1] : 0;
      const nudge = index === last && times[index] > previous ? Math.min(0.001, (times[index] - previous) / 2) : 0;
      markers.push([times[index] - nudge, `exit ${data}`]);
      exited = true;
    }
  });
  if (!exited && events.length > 0) markers.push([times[times.length - 1], 'end']);
  return markers;
}

/**
 * Converts a position on the timeline compressed by `limit` back to the original one: the
 * last event at or before it, plus the time since (which fits inside the original gap).
 */
export function originalTime(events, limit, position) {
  const times = compressTimes(events, limit);
  let index = -1;
  while (index + 1 < times.length && times[index + 1] <= position) index += 1;
  if (index < 0) return position;
  return events[index][0] + (position - times[index]);
}

/** Converts a position on the original timeline to the one compressed by `limit`. */
export function compressedTime(events, limit, original) {
  const times = compressTimes(events, limit);
  let index = -1;
  while (index + 1 < events.length && events[index + 1][0] <= original) index += 1;
  if (index < 0) return Math.min(original, times[0] ?? original);
  const gap = index + 1 < times.length ? times[index + 1] - times[index] : Infinity;
  return times[index] + Math.min(original - events[index][0], gap);
}
