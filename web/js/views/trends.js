// Trends: a project's metrics over its commits, one line per hardware
// target with its p5-p95 band, and the detector's markers. Without a metric
// the page shows every metric of the scenario as a small chart, drawn as it
// scrolls into view.

import { api, enc } from '../api.js';
import { MARKERS, TARGET_COLORS, markerStyle, markerText, trendChart } from '../charts.js';
import {
  clear, emptyState, errorState, fmtTime, fmtValue, h, labelled, loading, select, shortSha, table,
} from '../dom.js';
import { href, navigate, replaceParams } from '../state.js';

export const title = 'Trends';

const GRID_POINTS = 300;
const GRID_CONCURRENCY = 4;

function groupKey(s) {
  return s.scenario + '\u0000' + s.metric;
}

/*
 * Puts the points of several series on one x axis. In commit order a
 * commit's x is its position among the commits these series have points
 * for, ordered as the server learnt of them (commit id); in time order x is
 * the run's time. Returns {lines, commits (by x), xOf(commit_id)}.
 */
function layout(sel, results, xMode, multiBranch) {
  const byId = new Map();
  for (const r of results) {
    for (const p of r.points.points) {
      const c = byId.get(p.commit_id);
      if (!c) byId.set(p.commit_id, { id: p.commit_id, sha: p.commit, ts: p.ts, author: p.author, message: p.message });
      else if (p.ts < c.ts) c.ts = p.ts;
    }
  }
  const ids = [...byId.keys()].sort((a, b) => a - b);
  const rank = new Map(ids.map((id, i) => [id, i]));
  const commits = ids.map((id) => byId.get(id));
  // A marker's commit may have been left out by downsampling: the nearest earlier position.
  const rankOf = (id) => {
    if (rank.has(id)) return rank.get(id);
    let lo = 0, hi = ids.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ids[mid] <= id) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  };
  const lines = sel.map((s, i) => {
    const pts = results[i].points.points.map((p) => ({
      x: xMode === 'time' ? Date.parse(p.ts) : rank.get(p.commit_id),
      y: p.value, lo: p.lo, hi: p.hi, raw: { ...p, target: s.target, unit: s.unit },
    }));
    pts.sort((a, b) => a.x - b.x);
    return {
      label: multiBranch ? `${s.target} (${s.branch})` : s.target, color: TARGET_COLORS[i % TARGET_COLORS.length],
      series: s, total: results[i].points.total, returned: results[i].points.returned, points: pts,
    };
  });
  return { lines, commits, rankOf };
}

function placeMarkers(sel, results, lay, xMode, window_) {
  const markers = [];
  sel.forEach((s, i) => {
    for (const m of results[i].markers.markers) {
      if (window_ && m.ts && (Date.parse(m.ts) < window_.from || Date.parse(m.ts) > window_.to)) continue;
      let x;
      if (xMode === 'time') {
        if (!m.ts) continue;
        x = Date.parse(m.ts);
      } else {
        x = lay.rankOf(m.commit_id);
        if (x < 0) continue;
      }
      markers.push({ x, y: m.value, kind: m.kind, raw: { ...m, target: s.target, unit: s.unit } });
    }
  });
  return markers;
}

/* Where a marker leads: its incident, else (an improvement) the run that confirmed it. */
function markerLink(m) {
  if (m.incident_id) return href(['incidents', m.incident_id]);
  return m.run_id ? href(['runs', m.run_id]) : null;
}

function followMarker(m) {
  const to = markerLink(m);
  if (to) location.hash = to;
}

function markerLegend() {
  return h('div', { class: 'legend', 'aria-label': 'Marker kinds' },
    Object.values(MARKERS).map((st) => h('span', {}, h('span', { class: 'sym', style: `color:${st.color}` }, st.sym), ' ', st.label)),
    h('span', {}, 'band: p5–p95 of the run\'s samples'));
}

function pointsTable(lines, unit) {
  const rows = [];
  for (const l of lines) for (const p of l.points) rows.push([l, p.raw]);
  rows.sort((a, b) => (a[1].ts < b[1].ts ? 1 : -1));
  const shown = rows.slice(0, 500);
  return h('div', {},
    rows.length > shown.length ? h('p', { class: 'hint' }, `The newest ${shown.length} of ${rows.length} points.`) : null,
    table(['Target', 'Commit', 'Run time', { label: 'Value', class: 'num' }, { label: 'p5 – p95', class: 'num' }, { label: 'n', class: 'num' }, 'Run'],
      shown.map(([l, p]) => h('tr', {},
        h('td', {}, l.label), h('td', { class: 'mono' }, shortSha(p.commit)), h('td', { class: 'nowrap' }, fmtTime(p.ts)),
        h('td', { class: 'num' }, fmtValue(p.value, unit)),
        h('td', { class: 'num' }, `${fmtValue(p.lo, unit)} – ${fmtValue(p.hi, unit)}`),
        h('td', { class: 'num' }, p.n), h('td', {}, h('a', { href: href(['runs', p.run_id]) }, `#${p.run_id}`))))));
}

/*
 * The time range of the points shown between x min and max, as epoch
 * seconds with milliseconds: the runs' times are microseconds, so the end
 * is rounded up by a millisecond to keep the last point.
 */
function visibleTimes(lines, min, max) {
  let lo = Infinity, hi = -Infinity;
  for (const l of lines) {
    for (const p of l.points) {
      if (p.x < min || p.x > max) continue;
      const t = Date.parse(p.raw.ts);
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
  }
  return lo <= hi ? { from: (lo / 1000).toFixed(3), to: ((hi + 1) / 1000).toFixed(3) } : null;
}

async function renderMetric(box, ctx, st) {
  const { project, scenario, metric, xMode, params, sel } = st;
  const { signal } = ctx;
  const unit = sel[0].unit;
  const multiBranch = new Set(sel.map((s) => s.branch)).size > 1;
  const win = params.from || params.to
    ? { from: params.from ? Number(params.from) * 1000 : -Infinity, to: params.to ? Number(params.to) * 1000 : Infinity } : null;

  const info = h('p', { class: 'marker-info', 'aria-live': 'polite' });
  const canvasBox = h('div', { class: 'chart-box', dataset: { chart: 'trend', state: 'loading' } },
    h('canvas', { role: 'img', 'aria-label': `${scenario}/${metric} over commits` }));
  const tools = h('div', { class: 'chart-tools' });
  const after = h('div');
  box.append(
    h('h2', {}, `${scenario} / ${metric}`, ' ',
      h('span', { class: 'small muted' }, `${unit || 'no unit'}, ${sel[0].direction} is better`)),
    h('div', { class: 'chart-card' }, tools, canvasBox, info, markerLegend(), after));

  const width = canvasBox.clientWidth || 1000;
  const maxPoints = Math.min(4000, Math.max(200, Math.round(width * 1.5)));
  const q = new URLSearchParams({ max_points: String(maxPoints) });
  if (params.from) q.set('from', params.from);
  if (params.to) q.set('to', params.to);
  let results;
  try {
    results = await Promise.all(sel.map(async (s) => {
      const [points, markers] = await Promise.all([
        api.get(`/api/v1/series/${s.id}/points?${q}`, signal),
        api.get(`/api/v1/series/${s.id}/markers`, signal),
      ]);
      return { points, markers };
    }));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    clear(box).append(errorState(e, ctx.rerender));
    return null;
  }
  const lay = layout(sel, results, xMode, multiBranch);
  const markers = placeMarkers(sel, results, lay, xMode, win);
  const total = lay.lines.reduce((a, l) => a + l.total, 0);
  const returned = lay.lines.reduce((a, l) => a + l.returned, 0);
  const downsampled = lay.lines.some((l) => l.total > l.returned);
  // Zoom and pan go into the URL as the time range shown; points the server
  // left out come back at full resolution for that window.
  const onRange = (r) => {
    const t = visibleTimes(lay.lines, r.min, r.max);
    if (!t) return;
    if (downsampled) navigate('trends', { ...params, from: t.from, to: t.to });
    else replaceParams({ from: t.from, to: t.to });
  };
  canvasBox.dataset.points = String(returned);
  canvasBox.dataset.markers = String(markers.length);
  canvasBox.dataset.lines = String(lay.lines.length);

  const chart = trendChart(canvasBox.querySelector('canvas'), {
    lines: lay.lines, markers, unit, xMode, nCommits: lay.commits.length,
    commitLabel: (x) => (lay.commits[x] ? shortSha(lay.commits[x].sha) : ''),
    onPoint: (p) => navigate(['runs', p.run_id]),
    onMarker: followMarker,
    onMarkerHover: (m) => { info.textContent = m ? `${m.target}: ${markerText(m, unit)} — click to open` : ''; },
    onRange: (r) => onRange(r),
  });
  canvasBox.querySelector('canvas').setAttribute('aria-label',
    `${scenario}/${metric}: ${returned} points on ${lay.lines.length} target${lay.lines.length === 1 ? '' : 's'}, ${markers.length} markers`);
  if (!returned) {
    canvasBox.append(h('div', { class: 'chart-empty', dataset: { empty: '' } },
      win ? 'No points in this range. Reset the zoom to see the whole history.'
        : 'No results for this metric yet: its series exists, but no run has reported it.'));
  }

  const zoomed = () => chart.isZoomedOrPanned && chart.isZoomedOrPanned();
  const sync = () => {
    if (zoomed()) onRange({ min: chart.scales.x.min, max: chart.scales.x.max });
  };
  tools.append(
    h('button', { type: 'button', onclick: () => { chart.zoom(1.5); sync(); } }, 'Zoom in'),
    h('button', { type: 'button', onclick: () => { chart.zoom(0.67); sync(); } }, 'Zoom out'),
    h('button', { type: 'button', 'aria-label': 'Pan left', onclick: () => { chart.pan({ x: 120 }); sync(); } }, '← Pan'),
    h('button', { type: 'button', 'aria-label': 'Pan right', onclick: () => { chart.pan({ x: -120 }); sync(); } }, 'Pan →'),
    h('button', {
      type: 'button',
      onclick: () => {
        if (win) navigate('trends', { ...params, from: '', to: '' });
        else {
          chart.resetZoom();
          replaceParams({ from: '', to: '' });
        }
      },
    }, 'Reset zoom'),
    h('span', { class: 'hint' }, 'Drag to zoom · Shift+drag to pan · Ctrl+wheel zooms · a point opens its run, a marker its incident'));

  const notes = [];
  if (downsampled) {
    notes.push(h('p', { class: 'hint', dataset: { downsampled: '' } },
      `Showing ${returned.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} points: the server keeps the line's shape and its spikes (LTTB). Zoom in for every point.`));
  }
  if (win) {
    notes.push(h('p', { class: 'hint' }, `Zoomed to runs from ${fmtTime(win.from)} to ${fmtTime(win.to)}.`));
  }
  const markerItems = markers.slice().sort((a, b) => a.x - b.x).map((m) => h('li', {},
    h(markerLink(m.raw) ? 'a' : 'span', { href: markerLink(m.raw), dataset: { markerKind: m.kind }, style: `color:${markerStyle(m.kind).color}` },
      `${m.raw.target}: ${markerText(m.raw, unit)}`)));
  const tableBox = h('div');
  const details = h('details', {}, h('summary', {}, `Table of the ${returned} points`), tableBox);
  details.addEventListener('toggle', () => {
    if (details.open && !tableBox.firstChild) tableBox.append(pointsTable(lay.lines, unit));
  });
  after.append(...notes,
    h('h3', {}, `Markers (${markers.length})`),
    markers.length ? h('ul', { class: 'markers' }, markerItems)
      : h('p', { class: 'muted small' }, 'No regression, improvement, leak or drift detected on this metric.'),
    details);
  return chart;
}

/* One small chart per metric; each loads when it scrolls into view. */
function renderGrid(box, ctx, st) {
  const groups = new Map();
  for (const s of st.series) {
    if (st.scenario && s.scenario !== st.scenario) continue;
    const k = groupKey(s);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(s);
  }
  const keys = [...groups.keys()].sort();
  const targets = new Set(st.series.map((s) => s.target));
  box.append(h('p', { class: 'muted' },
    `${keys.length} metric${keys.length === 1 ? '' : 's'} on ${targets.size} target${targets.size === 1 ? '' : 's'}. Choose one for its full chart, its markers and its runs.`));
  const grid = h('div', { class: 'metric-grid' });
  box.append(grid);
  const charts = [];
  const queue = [];
  let running = 0;

  const pump = () => {
    while (running < GRID_CONCURRENCY && queue.length) {
      const job = queue.shift();
      running++;
      job().finally(() => {
        running--;
        pump();
      });
    }
  };

  const load = async (card, sel) => {
    const canvasBox = card.querySelector('.chart-box');
    try {
      const results = await Promise.all(sel.map(async (s) => {
        const [points, markers] = await Promise.all([
          api.get(`/api/v1/series/${s.id}/points?max_points=${GRID_POINTS}`, ctx.signal),
          api.get(`/api/v1/series/${s.id}/markers`, ctx.signal),
        ]);
        return { points, markers };
      }));
      if (ctx.signal.aborted) return;
      const lay = layout(sel, results, st.xMode, new Set(sel.map((s) => s.branch)).size > 1);
      const markers = placeMarkers(sel, results, lay, st.xMode, null);
      const returned = lay.lines.reduce((a, l) => a + l.returned, 0);
      canvasBox.dataset.points = String(returned);
      canvasBox.dataset.markers = String(markers.length);
      const open = () => navigate('trends', { project: st.project, scenario: sel[0].scenario, metric: sel[0].metric, x: st.params.x });
      charts.push(trendChart(canvasBox.querySelector('canvas'), {
        lines: lay.lines, markers, unit: sel[0].unit, xMode: st.xMode, nCommits: lay.commits.length, compact: true,
        commitLabel: (x) => (lay.commits[x] ? shortSha(lay.commits[x].sha) : ''),
        onPoint: open, onMarker: followMarker,
      }));
      if (!returned) canvasBox.append(h('div', { class: 'chart-empty', dataset: { empty: '' } }, 'no results yet'));
    } catch (e) {
      if (e.name === 'AbortError' || ctx.signal.aborted) return;
      canvasBox.replaceWith(errorState(e, null));
    }
  };

  const observer = new IntersectionObserver((entries) => {
    for (const en of entries) {
      if (!en.isIntersecting) continue;
      observer.unobserve(en.target);
      const sel = groups.get(en.target.dataset.key);
      queue.push(() => load(en.target, sel));
    }
    pump();
  }, { rootMargin: '200px' });

  for (const k of keys) {
    const sel = groups.get(k).sort((a, b) => a.target.localeCompare(b.target));
    const s0 = sel[0];
    const last = sel.filter((s) => s.last).map((s) => `${s.target} ${fmtValue(s.last.value, s.unit)}`).join(' · ');
    const card = h('article', { class: 'chart-card metric-card', dataset: { key: k, metric: s0.metric, scenario: s0.scenario } },
      h('h3', {}, h('a', { href: href('trends', { project: st.project, scenario: s0.scenario, metric: s0.metric, x: st.params.x }) },
        `${s0.scenario} / ${s0.metric}`)),
      h('div', { class: 'chart-box small', dataset: { chart: 'grid', state: 'loading' } },
        h('canvas', { role: 'img', 'aria-label': `${s0.scenario}/${s0.metric}, ${sel.length} target${sel.length === 1 ? '' : 's'}` })),
      h('p', { class: 'small muted', style: 'margin:0.3rem 0 0' }, last ? `latest: ${last}` : 'no results yet'));
    grid.append(card);
    observer.observe(card);
  }
  return () => {
    observer.disconnect();
    queue.length = 0;
    for (const c of charts) c.destroy();
  };
}

export async function render(root, ctx) {
  const { params, signal } = ctx;
  const projects = await api.get('/api/v1/projects', signal);
  clear(root);
  root.append(h('h1', {}, 'Trends'));
  if (!projects.length) {
    root.append(emptyState('No projects yet.', h('p', {}, 'Create one with ', h('code', {}, 'benchline project create'), '; its results appear here.')));
    return null;
  }
  const known = projects.some((p) => p.name === params.project);
  const project = known ? params.project : projects[0].name;
  const status = h('div');
  root.append(status);
  status.append(loading('Loading the series…'));
  const series = await api.get(`/api/v1/projects/${enc(project)}/series`, signal);
  clear(status);
  if (params.project && !known) status.append(h('p', { class: 'notice' }, `There is no project '${params.project}'; showing ${project}.`));

  const scenarios = [...new Set(series.map((s) => s.scenario))].sort();
  const scenario = scenarios.includes(params.scenario) ? params.scenario : '';
  const metrics = [...new Set(series.filter((s) => s.scenario === scenario).map((s) => s.metric))].sort();
  const metric = scenario && metrics.includes(params.metric) ? params.metric : '';
  const xMode = params.x === 'time' ? 'time' : 'commit';
  const go = (changes) => navigate('trends', { project, scenario, metric, x: params.x, ...changes });

  root.append(h('form', { class: 'controls', onsubmit: (e) => e.preventDefault(), 'aria-label': 'What to chart' },
    labelled('Project', select({ name: 'project', onchange: (e) => navigate('trends', { project: e.target.value, x: params.x }) },
      projects.map((p) => p.name), project)),
    labelled('Scenario', select({ name: 'scenario', onchange: (e) => go({ scenario: e.target.value, metric: '', from: '', to: '' }) },
      [{ value: '', label: 'All scenarios' }, ...scenarios], scenario)),
    labelled('Metric', select({ name: 'metric', disabled: !scenario, onchange: (e) => go({ metric: e.target.value, from: '', to: '' }) },
      [{ value: '', label: scenario ? 'All metrics' : 'Choose a scenario first' }, ...metrics], metric)),
    labelled('X axis', select({ name: 'x', onchange: (e) => go({ x: e.target.value === 'time' ? 'time' : '', from: params.from, to: params.to }) },
      [{ value: 'commit', label: 'Commit order' }, { value: 'time', label: 'Time' }], xMode))));

  if (!series.length) {
    root.append(emptyState(`No results for ${project} yet.`,
      h('p', {}, 'Its metrics appear here once a worker has run a job for one of its commits. ',
        h('a', { href: href('', { project }) }, 'See the queue on the overview'), '.')));
    return null;
  }
  if (params.metric && !metric) {
    root.append(h('p', { class: 'notice' }, `No metric '${params.metric}' in ${scenario || 'this project'}; choose one below.`));
  }
  const box = h('section');
  root.append(box);
  const st = { project, scenario, metric, xMode, params, series };
  if (metric) {
    st.sel = series.filter((s) => s.scenario === scenario && s.metric === metric)
      .sort((a, b) => a.target.localeCompare(b.target) || a.branch.localeCompare(b.branch));
    const chart = await renderMetric(box, ctx, st);
    return () => chart && chart.destroy();
  }
  return renderGrid(box, ctx, st);
}
