// The two timelines of a replay: the session's own (what `?t=`, search hits and a command's
// `at` give) and the player's, on which every idle gap longer than the idle-time limit is cut
// to the limit (asciinema-player's `idleTimeLimit` rule, applied by the gateway to the
// segmented index it serves).
//
// A segmented index lists, under `entry.gaps`, the gaps its limit cut, on the session's
// timeline: `[end, length]`, `end` being the time of the event after the gap. Without a limit
// the list is empty and both timelines are the same.

/**
 * How close (seconds) below the end of a cut gap a player's position is taken as that end:
 * sums of times in floating point are a hair off, and the end of a cut gap is where the
 * event after it is, the very moment a seek to that event asks for.
 */
const EPSILON = 1e-7;

/**
 * A time `t` of the session as a position on the player's timeline, given the index's cut
 * `gaps` and its idle-time `limit` (seconds; null for none). A time inside a cut gap is at
 * most `limit` past the gap's start.
 */
export function toPlayerTime(gaps, limit, t) {
  if (limit === null || limit === undefined) return t;
  let shift = 0;
  for (const [end, length] of gaps) {
    const start = end - length;
    if (t <= start) break;
    if (t < end) return start - shift + Math.min(t - start, limit);
    shift += length - limit;
  }
  return t - shift;
}

/**
 * A position `p` on the player's timeline as a time of the session: the inverse of
 * toPlayerTime() (a position in the `limit` left of a cut gap maps into the gap's start).
 */
export function toSessionTime(gaps, limit, p) {
  if (limit === null || limit === undefined) return p;
  let shift = 0;
  for (const [end, length] of gaps) {
    const start = end - length;
    const cutStart = start - shift;
    if (p <= cutStart) return p + shift;
    if (p < cutStart + limit - EPSILON) return start + (p - cutStart);
    shift += length - limit;
  }
  return p + shift;
}
