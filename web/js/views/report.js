// Report: the benchmarking plan's report of a commit on a target: each of
// the project's goals with the commit's value and ✓ or ✗, or "not measured"
// when the machine has no such metric (power without sensors).

import { api, enc } from '../api.js';
import { clear, emptyState, firstLine, fmtValue, h, labelled, select, shortSha, table } from '../dom.js';
import { href, navigate } from '../state.js';

export const title = 'Report';

const EXAMPLE = JSON.stringify({
  settings: {
    goals: [
      { scenario: 'latency', metric: 'p128_g32.ttft_ms', stat: 'p95', op: '<', value: 500, label: 'TTFT p95 < 500 ms' },
      { metric: 'tokens_per_s', op: '>', value: 10, label: 'tokens/s > 10' },
      { metric: 'peak_rss_bytes', op: '<', value: 4e9, label: 'peak memory < 4 GB' },
      { metric: 'mean_power_w', op: '<', value: 20, label: 'power < 20 W' },
    ],
  },
}, null, 2);

function statusCell(r) {
  if (r.status === 'pass') return h('span', { class: 'checkmark pass', 'aria-label': 'goal met', title: 'goal met' }, '✓');
  if (r.status === 'fail') return h('span', { class: 'checkmark fail', 'aria-label': 'goal missed', title: 'goal missed' }, '✗');
  return h('span', { class: 'muted' }, 'not measured');
}

export async function render(root, ctx) {
  const { params, signal } = ctx;
  const projects = await api.get('/api/v1/projects', signal);
  clear(root);
  root.append(h('h1', {}, 'Report'));
  if (!projects.length) {
    root.append(emptyState('No projects yet.', h('p', {}, 'A report needs a project with goals and results.')));
    return null;
  }
  const project = projects.some((p) => p.name === params.project) ? params.project : projects[0].name;
  const q = new URLSearchParams();
  if (params.commit) q.set('commit', params.commit);
  if (params.target) q.set('target', params.target);
  const [commits, targets, rep] = await Promise.all([
    api.get(`/api/v1/projects/${enc(project)}/commits?with_points=1&limit=300`, signal),
    api.get('/api/v1/targets', signal),
    api.get(`/api/v1/projects/${enc(project)}/report?${q}`, signal),
  ]);
  const commitSha = rep.commit ? rep.commit.sha : '';
  const go = (changes) => navigate('report', { project, commit: commitSha, target: rep.target, ...changes });
  const commitOptions = commits.map((c) => ({ value: c.sha, label: `${shortSha(c.sha)} ${firstLine(c.message) || ''}`.trim() }));
  if (commitSha && !commits.some((c) => c.sha === commitSha)) commitOptions.unshift({ value: commitSha, label: shortSha(commitSha) });
  root.append(h('form', { class: 'controls', onsubmit: (e) => e.preventDefault(), 'aria-label': 'Which report' },
    labelled('Project', select({ name: 'project', onchange: (e) => navigate('report', { project: e.target.value }) },
      projects.map((p) => p.name), project)),
    labelled('Commit', select({ name: 'commit', disabled: !commitOptions.length, onchange: (e) => go({ commit: e.target.value }) },
      commitOptions.length ? commitOptions : [{ value: '', label: 'no results yet' }], commitSha)),
    labelled('Target', select({ name: 'target', onchange: (e) => go({ target: e.target.value }) },
      targets.map((t) => t.name), rep.target || ''))));

  if (!rep.goals) {
    root.append(emptyState(`No goals are set for ${project}.`,
      h('p', {}, 'Goals are project settings; set them with the admin token:'),
      h('pre', { class: 'log' }, `curl -X PATCH -H "Authorization: Bearer $TOKEN" \\\n  -d '${EXAMPLE}' \\\n  ${location.origin}/api/v1/projects/${project}`)));
    return null;
  }
  if (!rep.commit) {
    root.append(emptyState(`No results for ${project}${rep.target ? ' on ' + rep.target : ''} yet.`,
      h('p', {}, `The report shows its ${rep.goals} goals once a commit has been benchmarked.`)));
  } else {
    root.append(h('p', {}, h('strong', { class: 'mono' }, shortSha(rep.commit.sha)), ` ${firstLine(rep.commit.message) || ''}`,
      h('span', { class: 'muted' }, ` on ${rep.target}`)),
    h('p', { class: 'summary', dataset: { passed: String(rep.passed), failed: String(rep.failed), notMeasured: String(rep.not_measured) } },
      h('strong', {}, `${rep.passed} of ${rep.goals} goals met`),
      rep.failed ? `, ${rep.failed} missed` : '', rep.not_measured ? `, ${rep.not_measured} not measured here` : '', '.'));
  }
  root.append(table(['Goal', 'Metric', { label: 'Value', class: 'num' }, { label: 'Goal', class: 'num' }, 'Status'],
    rep.rows.map((r) => h('tr', { dataset: { status: r.status } },
      h('td', {}, r.label),
      h('td', {}, r.scenario && rep.commit
        ? h('a', { href: href('trends', { project, scenario: r.scenario, metric: r.metric }) }, `${r.scenario}/${r.metric}`)
        : `${r.scenario ? r.scenario + '/' : ''}${r.metric}`, r.stat && r.stat !== 'median' ? h('span', { class: 'small muted' }, ` (${r.stat})`) : null),
      h('td', { class: 'num' }, r.value != null ? fmtValue(r.value, r.unit) : '—',
        r.run_id ? h('div', { class: 'small' }, h('a', { href: href(['runs', r.run_id]) }, `run #${r.run_id}`)) : null),
      h('td', { class: 'num' }, `${r.op} ${fmtValue(r.goal, r.unit)}`),
      h('td', {}, statusCell(r))))));
  root.append(h('p', { class: 'hint' }, 'A value is the median of the run\'s samples unless the goal names p5 or p95. A goal whose metric this target does not measure is not counted as missed.'));
  return null;
}
