// The JSON API of the gateway, as the pages use it.
//
// Every request goes to the same origin and is authenticated by the HttpOnly cookie that
// sign-in set. A 401 sends the browser to the sign-in page (which comes back here after),
// every other refusal becomes an ApiError carrying the status and the JSON error body
// `{"code", "message"}` that the API always sends.

/** A refusal or failure of the API: HTTP status, stable code and human message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Where the sign-in page should send the user back to: this page, with its query. */
export function currentPath() {
  return location.pathname + location.search;
}

/** Goes to the sign-in page; returns a promise that never settles, so callers stop there. */
export function redirectToLogin() {
  location.assign('/login?next=' + encodeURIComponent(currentPath()));
  return new Promise(() => {});
}

/**
 * Sends a request and returns the Response when it is a success (2xx).
 *
 * options.method: HTTP method (GET unless given); options.body: sent as JSON;
 * options.noRedirect: a 401 throws an ApiError instead of going to the sign-in page;
 * options.accept: the Accept header (JSON unless given).
 */
export async function request(path, { method = 'GET', body, noRedirect = false, accept = 'application/json' } = {}) {
  const init = { method, credentials: 'same-origin', headers: { accept } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'network_error', `the gateway could not be reached (${error.message})`);
  }
  if (response.ok) return response;
  if (response.status === 401 && !noRedirect) return redirectToLogin();
  throw await errorOf(response);
}

/** Like request(), and returns the parsed JSON body (null for 204 No Content). */
export async function api(path, options) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  return response.json();
}

/** Reads the API's `{"code", "message"}` error body; falls back on the HTTP status. */
async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || 'request failed';
  try {
    const body = await response.json();
    if (body && typeof body.code === 'string') code = body.code;
    if (body && typeof body.message === 'string') message = body.message;
  } catch {
    // Not JSON (a proxy's error page, say): keep the status line.
  }
  return new ApiError(response.status, code, message);
}

/**
 * One line telling the user what was refused and why, from an error and what the page was
 * doing ("list sessions", "kill this session"), e.g.
 * "You may not kill this session: only admins kill sessions (403 forbidden)".
 */
export function describeError(error, doing) {
  if (!(error instanceof ApiError)) return `Could not ${doing}: ${error.message || error}`;
  const lead = error.status === 403 ? 'You may not' : 'Could not';
  const status = error.status ? `${error.status} ${error.code}` : error.code;
  return `${lead} ${doing}: ${error.message} (${status})`;
}

/** Builds a query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** The session id in a path like /sessions/<id> or /sessions/<id>/live. */
export function sessionIdFromPath() {
  const match = /^\/sessions\/([^/]+)/.exec(location.pathname);
  return match ? decodeURIComponent(match[1]) : '';
}
