// The HTTP API (docs/http-api.md) as the dashboard calls it: bearer token, JSON, and its errors
// ({"error": {"code", "message", "field"}}) as ApiError.

const storageKey = 'herald.token';
const listeners = new Set();

/** An error answer from the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** The signed-in token, or "" when signed out. */
export function token() {
  return sessionStorage.getItem(storageKey) || '';
}

/** Keeps the token for this tab. */
export function setToken(value) {
  sessionStorage.setItem(storageKey, value);
}

/** Forgets the token. */
export function clearToken() {
  sessionStorage.removeItem(storageKey);
}

/** Calls `listener(error)` when the API refuses the token (401) during use. */
export function onUnauthorized(listener) {
  listeners.add(listener);
}

async function errorFrom(response) {
  let code = 'http_' + response.status;
  let message = `${response.status} ${response.statusText}`;
  let field;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      field = body.error.field;
    }
  } catch {
    // Not JSON (a proxy's page, say): the status line says enough.
  }
  return new ApiError(response.status, code, message, field);
}

/** Sends a request; resolves with the Response when it succeeded, else throws ApiError. */
export async function raw(method, path, {body, params, tokenOverride, accept} = {}) {
  let url = path;
  if (params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined || value === null || value === '') continue;
      for (const v of Array.isArray(value) ? value : [value]) query.append(key, String(v));
    }
    const text = query.toString();
    if (text) url += '?' + text;
  }
  const headers = {Authorization: 'Bearer ' + (tokenOverride ?? token())};
  if (accept) headers.Accept = accept;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server: ${e.message}`);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && tokenOverride === undefined) {
      for (const listener of listeners) listener(error);
    }
    throw error;
  }
  return response;
}

/** A JSON request; resolves with the parsed body. */
export async function json(method, path, options = {}) {
  const response = await raw(method, path, options);
  return response.json();
}

/** GET with query parameters. */
export function get(path, params) {
  return json('GET', path, {params});
}

/** Text of a GET (metrics, CSV). */
export async function text(path, params) {
  const response = await raw('GET', path, {params});
  return response.text();
}

/**
 * An EventSource on a stream endpoint, authenticated by ?access_token= (EventSource cannot
 * send headers).
 */
export function stream(path, params = {}) {
  const query = new URLSearchParams({...params, access_token: token()});
  return new EventSource(`${path}?${query}`);
}
