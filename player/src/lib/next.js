// Where the sign-in page may send the browser afterwards (`?next=`): only a path on this
// site. No DOM here, so node can check it on its own (tests/security/sign_in_next.rs).

// Control characters (C0, DEL, C1) and the backslash, which browsers read as a slash.
const FORBIDDEN = /[\\\u0000-\u001f\u007f-\u009f]/;

/**
 * `next` as a path on `origin` ("/sessions?x#y"), or null when it is anything else: an
 * absolute or scheme-relative URL ("//evil", "/\evil"), one with a backslash or a control
 * character, raw or percent-encoded ("/%09/evil"), or one that resolves off `origin`.
 */
export function sameOriginPath(next, origin) {
  if (typeof next !== 'string' || !next.startsWith('/')) return null;
  let decoded;
  try {
    decoded = decodeURIComponent(next);
  } catch {
    return null;
  }
  for (const text of [next, decoded]) {
    if (FORBIDDEN.test(text) || text.startsWith('//')) return null;
  }
  let url;
  try {
    url = new URL(next, origin);
  } catch {
    return null;
  }
  if (url.origin !== origin) return null;
  return url.pathname + url.search + url.hash;
}
