// The dashboard's entry point: the router from the URL's fragment to a view.

import { ApiError } from './api.js';
import { renderAdminBox } from './admin.js';
import { chartLibraryLoaded } from './charts.js';
import { clear, emptyState, errorState, h, loading } from './dom.js';
import { parseHash } from './state.js';
import * as compare from './views/compare.js';
import * as incidents from './views/incidents.js';
import * as overview from './views/overview.js';
import * as report from './views/report.js';
import * as run from './views/run.js';
import * as trends from './views/trends.js';

const views = { overview, trends, runs: run, incidents, compare, report };
const navOf = { runs: 'trends' };

let current = null;

async function route() {
  const { path, params } = parseHash();
  const name = path[0] || 'overview';
  const view = views[name];
  if (current) {
    current.controller.abort();
    if (current.cleanup) current.cleanup();
  }
  const controller = new AbortController();
  const me = { controller, cleanup: null };
  current = me;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === (navOf[name] || name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.dataset.view = name;
  main.dataset.state = 'loading';
  clear(main).append(loading());
  document.title = 'benchline · ' + (view ? (view.title || name) : 'not found');
  if (!view) {
    clear(main).append(h('h1', {}, 'Not found'),
      emptyState(`There is no page '${path.join('/')}'.`, h('p', {}, h('a', { href: '#/' }, 'Go to the overview'))));
    main.dataset.state = 'ready';
    return;
  }
  if (!chartLibraryLoaded()) {
    clear(main).append(h('div', { class: 'error', role: 'alert' },
      h('strong', {}, 'The chart libraries did not load.'),
      'They come from npm: run "npm ci" in web/ (make run and make test do), then reload.'));
    main.dataset.state = 'error';
    return;
  }
  try {
    const cleanup = await view.render(main, {
      path, params, signal: controller.signal, rerender: () => route(),
    });
    if (current !== me) {
      if (cleanup) cleanup();
      return;
    }
    me.cleanup = cleanup || null;
    main.dataset.state = 'ready';
  } catch (e) {
    if (e.name === 'AbortError' || current !== me) return;
    clear(main).append(h('h1', {}, view.title || name), errorState(e, () => route()));
    main.dataset.state = 'error';
    if (!(e instanceof ApiError)) throw e;  // a bug: let it reach the console
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('benchline-admin', renderAdminBox);
renderAdminBox();
route();
