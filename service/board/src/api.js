// The /v1 API as the board uses it. The token lives in this tab's sessionStorage only; it goes
// in the Authorization header, never in a URL.
const TOKEN_KEY = 'painpoint.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function send(path, { method = 'GET', body, headers = {} } = {}) {
  const token = getToken();
  const all = { ...headers };
  if (token) all.Authorization = 'Bearer ' + token;
  if (body !== undefined) all['Content-Type'] = 'application/json';
  return fetch(path, {
    method,
    headers: all,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
}

// The API's own words: {"error":{"code","message"}} bodies become an ApiError with that message.
async function parse(response) {
  const text = await response.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (!response.ok) {
    const error = doc && doc.error;
    throw new ApiError(response.status, error ? error.code : 'http_' + response.status,
      error ? error.message : `HTTP ${response.status}`);
  }
  return doc;
}

export async function api(path, options) {
  return parse(await send(path, options));
}

// GET /v1/products, conditional on the previous answer's ETag: {changed: false} on 304.
export async function pollProducts(etag) {
  const response = await send('/v1/products', { headers: etag ? { 'If-None-Match': etag } : {} });
  if (response.status === 304) return { changed: false, etag };
  const doc = await parse(response);
  return { changed: true, etag: response.headers.get('ETag'), doc };
}

export const listProducts = () => api('/v1/products');

// Every active pain point of a product, in the server's severity order (pages of 500).
export async function listPainPoints(productId) {
  const all = [];
  let cursor = '';
  do {
    const query = `sort=severity&limit=500${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`;
    const page = await api(`/v1/products/${encodeURIComponent(productId)}/pain-points?${query}`);
    all.push(...(page.painPoints || []));
    cursor = page.nextCursor || '';
  } while (cursor);
  return all;
}

export const getPainPoint = (id) => api(`/v1/pain-points/${encodeURIComponent(id)}`);

export function listEvents(id, cursor) {
  const query = `limit=25${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`;
  return api(`/v1/pain-points/${encodeURIComponent(id)}/events?${query}`);
}

const post = (id, op, body) =>
  api(`/v1/pain-points/${encodeURIComponent(id)}/${op}`, { method: 'POST', body });
export const renamePainPoint = (id, label) => post(id, 'rename', { label });
export const mergePainPoint = (id, into) => post(id, 'merge', { into });
export const splitPainPoint = (id, eventIds) => post(id, 'split', { eventIds });

export const getMergedIds = (id) => api(`/v1/pain-points/${encodeURIComponent(id)}/merged`);

// Whether the token may curate. An empty rename body is refused with 400 after the write guard
// and before any lookup, so this changes nothing: 400 = writes allowed, 401 = they are not.
export async function canWrite() {
  try {
    await api('/v1/pain-points/-/rename', { method: 'POST', body: {} });
    return true;
  } catch (e) {
    return e.status !== 401 && e.status !== 403;
  }
}
