// The benchline HTTP API: JSON in and out, errors as ApiError, the admin
// token kept in sessionStorage (this tab, until it closes or signs out).

const TOKEN_KEY = 'benchline.admin_token';

export class ApiError extends Error {
  constructor(status, code, message, method, url) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.method = method;
    this.url = url;
  }
}

export function adminToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setAdminToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new Event('benchline-admin'));
}

async function request(method, url, { body, signal, admin } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (admin) headers.Authorization = 'Bearer ' + adminToken();
  let resp;
  try {
    resp = await fetch(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'unreachable', 'the server could not be reached (' + e.message + ')', method, url);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(resp.status, 'malformed', 'the answer is not JSON', method, url);
    }
  }
  if (!resp.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(resp.status, err.code || 'error', err.message || resp.statusText, method, url);
  }
  return data;
}

export const api = {
  get: (url, signal) => request('GET', url, { signal }),
  patch: (url, body, signal) => request('PATCH', url, { body, signal, admin: true }),
};

export const enc = encodeURIComponent;
