//! The scripts section 9 (`replay_page`) runs in the replay page: a first-frame watcher put in
//! every new document before the page's own scripts, the seek and its wait, the page's
//! timeline from Resource Timing, and what the page did before segmented replay. Each reads
//! the player's screen as text (`.ap-term .ap-line`, one element per row) and times itself
//! with `performance.now()`, so that WebDriver's round trips are not in the figures.

/// Watches for the first frame of a `?t=` replay page, from before the page's scripts run:
/// `window.benchFirstFrame` is set to `performance.now()` (ms since the navigation started)
/// when the player, past 0, shows a line of digits, and `window.benchFirstShown` to the largest
/// number shown and the player's position then.
pub const FIRST_FRAME_WATCH: &str = r"(() => {
  if (!/^\/sessions\/[^/]+$/.test(location.pathname) || !new URLSearchParams(location.search).has('t')) return;
  window.benchFirstFrame = null;
  let observer = null;
  let timer = null;
  const check = () => {
    const player = window.entryPlayer;
    if (window.benchFirstFrame !== null || !player || !(player.getCurrentTime() > 0)) return;
    let shown = -1;
    for (const line of document.querySelectorAll('.ap-term .ap-line')) {
      const text = line.textContent.trim();
      if (/^\d+$/.test(text)) shown = Math.max(shown, Number(text));
    }
    if (shown < 0) return;
    window.benchFirstFrame = performance.now();
    window.benchFirstShown = [shown, player.getCurrentTime()];
    observer.disconnect();
    clearInterval(timer);
  };
  observer = new MutationObserver(check);
  observer.observe(document, { subtree: true, childList: true, characterData: true });
  timer = setInterval(check, 5);
})();";

/// The largest number on the player's screen (-1 for none), as a JS function.
const SHOWN: &str = "() => {
  let most = -1;
  for (const line of document.querySelectorAll('.ap-term .ap-line')) {
    const text = line.textContent.trim();
    if (/^\\d+$/.test(text)) most = Math.max(most, Number(text));
  }
  return most;
}";

/// Seeks to `arguments[0]` of the duration and waits (at most `arguments[2]` ms) until the
/// screen shows a number of at least `arguments[1]`; times from the call.
pub fn seek_script() -> String {
    format!(
        "const shown = {SHOWN};
        const [share, least, within] = arguments;
        const player = window.entryPlayer;
        const duration = player.getDuration();
        const started = performance.now();
        return player.seek(share * duration).then(() => {{
          const resolved = performance.now() - started;
          return new Promise((resolve, reject) => {{
            let observer = null, timer = null, limit = null;
            const done = () => {{
              if (shown() < least) return;
              observer.disconnect(); clearInterval(timer); clearTimeout(limit);
              resolve({{ ms: performance.now() - started, resolved, shown: shown(), duration }});
            }};
            observer = new MutationObserver(done);
            observer.observe(document.querySelector('.ap-term'), {{ subtree: true, childList: true, characterData: true }});
            timer = setInterval(done, 5);
            limit = setTimeout(() => {{
              observer.disconnect(); clearInterval(timer);
              reject(new Error(`after ${{within}} ms the screen shows ${{shown()}}, not >= ${{least}}`));
            }}, within);
            done();
          }});
        }});"
    )
}

/// The page's timeline (ms from the navigation's start): its load event, the index's and the
/// first segment's arrival; and the segments fetched, with their bytes.
pub const RESOURCES: &str = "
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const index = resources.find((e) => /\\/segments(\\?|$)/.test(e.name));
  const segments = resources.filter((e) => /\\/segments\\/\\d+/.test(e.name));
  return {
    load: nav ? nav.loadEventEnd : -1,
    index: index ? index.responseEnd : -1,
    segment: segments.length ? segments[0].responseEnd : -1,
    segments: segments.length,
    numbers: segments.map((e) => Number(/\\/segments\\/(\\d+)/.exec(e.name)[1])),
    bytes: segments.reduce((sum, e) => sum + e.encodedBodySize, 0),
  };";

/// What the old page did before making the player (player/src/lib/asciicast.js,
/// `parseAsciicast`): the whole asciicast as text, split into lines, each event parsed and
/// kept, the kept lines joined again; it held the result (`state.recording`), so this does too.
pub const OLD_PAGE: &str = "
  const url = arguments[0];
  const started = performance.now();
  return fetch(url, { headers: { accept: 'application/x-asciicast' } }).then((response) => {
    if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
    return response.text();
  }).then((text) => {
    const fetched = performance.now();
    const lines = text.split('\\n');
    const header = JSON.parse(lines[0]);
    const kept = [lines[0]];
    const events = [];
    for (const line of lines.slice(1)) {
      if (!line.startsWith('[')) continue;
      let event;
      try { event = JSON.parse(line); } catch { continue; }
      if (Array.isArray(event) && event.length >= 3 && typeof event[0] === 'number') {
        events.push(event);
        kept.push(line);
      }
    }
    window.benchOldRecording = { header, events, text: kept.join('\\n') + '\\n' };
    const parsed = performance.now();
    return { fetch: fetched - started, parse: parsed - fetched, chars: text.length, events: events.length };
  });";
