// Run: one run in full: the machine's fingerprint, the build log's tail,
// every metric with the detector's verdict, and the series recorded inside
// the run (RSS, tokens/s, temperature, power), where a leak or throttling shows.

import { api } from '../api.js';
import { TARGET_COLORS, runSeriesChart } from '../charts.js';
import {
  badge, clear, emptyState, fmtP, fmtPct, fmtTime, fmtValue, h, kv, shortSha, table,
} from '../dom.js';
import { href } from '../state.js';

export const title = 'Run';

const SERIES_NAMES = {
  rss_bytes: 'RSS (resident memory)',
  rss_per_request: 'RSS after each request',
  tokens_per_s: 'tokens/s',
  window_tokens_per_s: 'tokens/s per window (endurance)',
  temp_c: 'temperature',
  power_w: 'power',
  cpu_pct: 'CPU',
};

function verdictCell(m) {
  // Accuracy, leak and endurance metrics are judged by their own rules, within the run.
  if (!m.verdict) return h('span', { class: 'muted small', title: 'judged by the accuracy, leak or endurance rules' }, 'no run-to-run verdict');
  if (m.verdict === 'baseline' || m.verdict === 'excluded') return badge(m.verdict, m.verdict);
  const change = m.change_pct == null ? null
    : h('span', { class: 'small' }, ` ${fmtPct(Math.abs(m.change_pct))} ${m.change_pct > 0 ? 'worse' : 'better'}`);
  return h('span', {}, badge(m.verdict, m.verdict), change, m.p_value != null ? h('span', { class: 'small muted' }, ` ${fmtP(m.p_value)}`) : null);
}

function metricsSection(run) {
  if (!run.metrics.length) return emptyState('This run reported no metrics.');
  const byScenario = new Map();
  for (const m of run.metrics) {
    if (!byScenario.has(m.scenario)) byScenario.set(m.scenario, []);
    byScenario.get(m.scenario).push(m);
  }
  return h('div', {}, [...byScenario].map(([sc, ms]) => h('div', {},
    h('h3', {}, sc),
    table(['Metric', { label: 'Value', class: 'num' }, { label: 'p5 – p95', class: 'num' }, { label: 'n', class: 'num' }, 'Verdict against the baseline'],
      ms.map((m) => h('tr', { dataset: { metric: m.metric } },
        h('td', {}, h('a', { href: href('trends', { project: run.project, scenario: m.scenario, metric: m.metric }) }, m.metric),
          h('span', { class: 'small muted' }, ` ${m.direction} is better`)),
        h('td', { class: 'num' }, fmtValue(m.value, m.unit)),
        h('td', { class: 'num' }, m.n > 1 ? `${fmtValue(m.lo, m.unit)} – ${fmtValue(m.hi, m.unit)}` : '—'),
        h('td', { class: 'num' }, m.n),
        h('td', {}, verdictCell(m))))))));
}

const SERIES_ORDER = ['rss_per_request', 'rss_bytes', 'window_tokens_per_s', 'tokens_per_s', 'temp_c', 'power_w', 'cpu_pct'];

function seriesRank(name) {
  const i = SERIES_ORDER.indexOf(name);
  return i < 0 ? SERIES_ORDER.length : i;
}

function timeseriesSection(run, charts) {
  if (!run.timeseries.length) {
    return emptyState('No series were recorded inside this run.',
      h('p', {}, 'The worker records RSS, CPU, temperature, power and tokens/s while a scenario runs, when the machine has the sensors.'));
  }
  const grid = h('div');
  const pending = [];
  const byScenario = new Map();
  for (const s of run.timeseries) {
    if (!byScenario.has(s.scenario)) byScenario.set(s.scenario, []);
    byScenario.get(s.scenario).push(s);
  }
  for (const [scenario, list] of byScenario) {
    const sub = h('div', { class: 'ts-grid' });
    grid.append(h('h3', {}, scenario), sub);
    list.sort((a, b) => seriesRank(a.name) - seriesRank(b.name) || a.name.localeCompare(b.name));
    for (const s of list) addSeries(sub, s, pending, charts);
  }
  return { grid, pending };
}

/* One chart of a series recorded inside the run; drawn once the page holds it. */
function addSeries(grid, s, pending, charts) {
  const canvas = h('canvas', { role: 'img', 'aria-label': `${s.name} over the ${s.scenario} run, ${s.returned} samples` });
  const box = h('div', { class: 'chart-box medium', dataset: { chart: 'run-series', series: s.name, points: String(s.returned) } }, canvas);
  grid.append(h('article', { class: 'chart-card' },
    h('h4', { style: 'margin:0 0 0.3rem' }, `${SERIES_NAMES[s.name] || s.name}`, h('span', { class: 'small muted' }, ` · ${s.unit}`)),
    box,
    s.total > s.returned ? h('p', { class: 'hint' }, `${s.returned} of ${s.total} samples (LTTB keeps the spikes)`) : null));
  pending.push(() => charts.push(runSeriesChart(canvas, {
    series: [{ label: SERIES_NAMES[s.name] || s.name, color: TARGET_COLORS[0], t: s.t, v: s.v }],
    unit: s.unit, xTitle: s.name === 'rss_per_request' ? 'request number' : 'seconds into the run',
  })));
}

export async function render(root, ctx) {
  const id = ctx.path[1];
  if (!/^[0-9]+$/.test(id || '')) {
    clear(root).append(h('h1', {}, 'Run'), emptyState('Which run?', h('p', {}, 'Open a run from a point on a trend chart or from the overview.')));
    return null;
  }
  const run = await api.get(`/api/v1/runs/${id}`, ctx.signal);
  const charts = [];
  const c = run.commit;
  clear(root);
  root.append(
    h('h1', {}, `Run #${run.id}`, ' ', h('span', { class: 'small muted' }, `${run.project} · ${run.target}`)),
    h('div', { class: 'card' },
      h('p', { class: 'commit-msg' }, h('strong', { class: 'mono' }, shortSha(c.sha)), ' ', c.message || h('span', { class: 'muted' }, '(no commit message)')),
      kv([
        ['Commit', h('span', { class: 'mono' }, c.sha)],
        ['Author', c.author || 'unknown'],
        ['Branch', c.branch],
        ['Target', run.target],
        ['Worker', run.worker || '—'],
        ['Job', `#${run.job_id}, attempt ${run.attempt}, ${run.reason}`],
        ['Scenarios', run.scenarios.join(', ')],
        ['Finished', fmtTime(run.created_at)],
        ['Build', run.build_duration_s != null ? `${run.build_duration_s.toFixed(1)} s` : '—'],
        ['Run', run.duration_s != null ? `${run.duration_s.toFixed(1)} s` : '—'],
        run.suspect.length ? ['Suspect', h('span', {}, badge('kept out of baselines', 'suspect'), ' ', run.suspect.join(', '))] : null,
        ['Detection', run.judged ? 'judged' : badge('waiting for the detector', 'pending')],
      ]),
      h('p', { class: 'small' },
        h('a', { href: href('compare', { project: run.project, target: run.target, head: c.sha }) }, 'Compare with its parent'), ' · ',
        h('a', { href: href('report', { project: run.project, commit: c.sha, target: run.target }) }, 'Report against the goals'))));
  if (run.alerts.length) {
    root.append(h('div', { class: 'notice', role: 'status' }, h('strong', {}, 'This run raised alerts: '),
      run.alerts.map((a, i) => [i ? ', ' : '', h('a', { href: href(['incidents', a.incident_id]) },
        `${a.kind} on ${a.scenario}/${a.metric}${a.change_pct != null ? ' ' + fmtPct(a.change_pct) : ''} (incident #${a.incident_id})`)])));
  }
  const ts = timeseriesSection(run, charts);
  root.append(
    h('h2', {}, 'Inside the run'), ts.grid || ts,
    h('h2', {}, 'Metrics'), metricsSection(run),
    h('div', { class: 'grid2' },
      h('section', {}, h('h2', {}, 'Environment'),
        Object.keys(run.environment).length
          ? h('div', { class: 'card' }, kv(Object.entries(run.environment).sort().map(([k, v]) => [k, String(v)])))
          : emptyState('No environment was reported.')),
      h('section', {}, h('h2', {}, 'Build log'),
        h('p', { class: 'hint' }, run.build_log_bytes > run.build_log_tail.length
          ? `The last ${run.build_log_tail.length.toLocaleString('en-US')} of ${run.build_log_bytes.toLocaleString('en-US')} bytes.`
          : `${run.build_log_bytes.toLocaleString('en-US')} bytes.`),
        run.build_log_tail ? h('pre', { class: 'log', tabindex: '0', 'aria-label': 'Build log tail' }, run.build_log_tail)
          : emptyState('The build printed nothing.'))),
    h('details', {}, h('summary', {}, "The worker's notes (scenario parameters and summaries)"),
      h('pre', { class: 'log', tabindex: '0' }, JSON.stringify(run.info, null, 2))));
  if (ts.pending) for (const p of ts.pending) p();
  return () => charts.forEach((ch) => ch.destroy());
}
