// The view's state lives in the URL's fragment: "#/<view>[/<id>]?k=v&...",
// so a link reproduces what the page shows. The alert e-mail links to
// "#/incidents/<id>" (server/notify.c).

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = (q < 0 ? raw : raw.slice(0, q)).split('/').filter(Boolean).map(decodeURIComponent);
  const params = {};
  for (const [k, v] of new URLSearchParams(q < 0 ? '' : raw.slice(q + 1))) params[k] = v;
  return { path, params };
}

// "#/trends?project=demo&metric=x": empty values are left out, keys keep their order.
export function href(path, params = {}) {
  const p = Array.isArray(path) ? path : [path];
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  }
  const s = qs.toString();
  return '#/' + p.filter((x) => x !== '' && x !== undefined && x !== null).map(encodeURIComponent).join('/') + (s ? '?' + s : '');
}

export function navigate(path, params) {
  const target = href(path, params);
  if (location.hash !== target) location.hash = target;
}

// Records state that does not need a new render (zoom, pan) without a new history entry.
export function replaceParams(params) {
  const { path, params: old } = parseHash();
  const merged = { ...old, ...params };
  history.replaceState(history.state, '', href(path, merged));
}
