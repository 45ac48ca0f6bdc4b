// Compare: two commits (or a commit and its parent) on one target: every
// metric side by side with its change, coloured by direction and
// significance (two-sided Mann-Whitney U on the raw samples).

import { api, enc } from '../api.js';
import {
  clear, emptyState, firstLine, fmtP, fmtPct, fmtValue, h, labelled, select, shortSha, table,
} from '../dom.js';
import { href, navigate } from '../state.js';

export const title = 'Compare';

const ALPHA = 0.05;

function verdict(m) {
  if (m.change_pct == null) return { cls: 'ns', text: m.base && m.head ? 'no change measurable' : m.head ? 'new metric' : 'gone' };
  if (m.p_value == null) return { cls: 'ns', text: 'too few samples to tell' };
  if (m.p_value >= ALPHA) return { cls: 'ns', text: 'not significant' };
  return m.better ? { cls: 'better', text: 'better' } : { cls: 'worse', text: 'worse' };
}

function commitOption(c) {
  return { value: c.sha, label: `${shortSha(c.sha)} ${firstLine(c.message) || ''}`.trim() };
}

export async function render(root, ctx) {
  const { params, signal } = ctx;
  const projects = await api.get('/api/v1/projects', signal);
  clear(root);
  root.append(h('h1', {}, 'Compare'));
  if (!projects.length) {
    root.append(emptyState('No projects yet.', h('p', {}, 'Commits can be compared once a project has results.')));
    return null;
  }
  const project = projects.some((p) => p.name === params.project) ? params.project : projects[0].name;
  const commits = await api.get(`/api/v1/projects/${enc(project)}/commits?with_points=1&limit=300`, signal);
  if (!commits.length) {
    root.append(emptyState(`No results for ${project} yet.`, h('p', {}, 'A comparison needs two benchmarked commits.')));
    return null;
  }
  const byPrefix = (s) => s && commits.find((c) => c.sha.startsWith(s));
  const ranOn = (c, t) => c.status.some((s) => s.run_id && s.target === t);
  // By default the newest commit that has an older benchmarked one on a target of its own.
  const comparable = (c) => c.status.some((s) => s.run_id && commits.some((o) => o.id < c.id && ranOn(o, s.target)));
  const head = byPrefix(params.head) || commits.find(comparable) || commits[0];
  const headTargets = head.status.filter((s) => s.run_id).map((s) => s.target);
  const target = headTargets.includes(params.target) ? params.target
    : headTargets.find((t) => commits.some((o) => o.id < head.id && ranOn(o, t))) || headTargets[0] || '';
  // The parent when the server knows it, else the previous benchmarked commit on the target.
  const older = commits.filter((c) => c.id < head.id && ranOn(c, target));
  let base = byPrefix(params.base);
  let notice = null;
  if (!base && head.parent_known) base = commits.find((c) => c.sha === head.parent) || { sha: head.parent };
  if (!base) {
    base = older[0];
    if (base) {
      notice = `The parent of ${shortSha(head.sha)} is not known to the server; comparing with the previous benchmarked commit ${shortSha(base.sha)}.`;
    }
  }
  const go = (changes) => navigate('compare', { project, target, head: head.sha, base: params.base, ...changes });

  root.append(h('form', { class: 'controls', onsubmit: (e) => e.preventDefault(), 'aria-label': 'What to compare' },
    labelled('Project', select({ name: 'project', onchange: (e) => navigate('compare', { project: e.target.value }) },
      projects.map((p) => p.name), project)),
    labelled('Commit', select({ name: 'head', onchange: (e) => go({ head: e.target.value, base: '' }) },
      commits.map(commitOption), head.sha)),
    labelled('Against', select({ name: 'base', onchange: (e) => go({ base: e.target.value }) },
      [{ value: '', label: head.parent_known ? 'its parent' : 'the previous benchmarked commit' },
        ...commits.filter((c) => c.id !== head.id).map(commitOption)], params.base && base ? base.sha : '')),
    labelled('Target', select({ name: 'target', onchange: (e) => go({ target: e.target.value }) },
      headTargets.length ? headTargets : [{ value: '', label: 'no runs' }], target))));
  if (!base) {
    root.append(emptyState(`Nothing to compare ${shortSha(head.sha)} with on ${target}.`,
      h('p', {}, 'It is the first benchmarked commit there; choose another commit to compare against.')));
    return null;
  }
  if (notice) root.append(h('p', { class: 'notice' }, notice));
  const q = new URLSearchParams({ base: base.sha });
  if (target) q.set('target', target);
  const cmp = await api.get(`/api/v1/projects/${enc(project)}/commits/${enc(head.sha)}/compare?${q}`, signal);
  const rows = cmp.metrics.map((m) => ({ m, v: verdict(m) }));
  const count = (cls) => rows.filter((r) => r.v.cls === cls).length;
  const filter = h('input', { type: 'search', name: 'filter', placeholder: 'metric name', 'aria-label': 'Filter metrics' });
  const body = h('div');
  const draw = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => !f || `${r.m.scenario}/${r.m.metric}`.toLowerCase().includes(f));
    clear(body).append(shown.length ? table(
      ['Scenario', 'Metric', { label: shortSha(base.sha), class: 'num' }, { label: shortSha(head.sha), class: 'num' },
        { label: 'Change', class: 'num' }, { label: 'p', class: 'num' }, 'Verdict', { label: 'n', class: 'num' }],
      shown.map(({ m, v }) => h('tr', { class: v.cls, dataset: { metric: m.metric, verdict: v.cls } },
        h('td', {}, m.scenario),
        h('td', {}, h('a', { href: href('trends', { project, scenario: m.scenario, metric: m.metric }) }, m.metric),
          h('span', { class: 'small muted' }, ` ${m.direction} is better`)),
        h('td', { class: 'num' }, m.base ? fmtValue(m.base.value, m.unit) : '—'),
        h('td', { class: 'num' }, m.head ? fmtValue(m.head.value, m.unit) : '—'),
        h('td', { class: 'num' }, fmtPct(m.change_pct)),
        h('td', { class: 'num' }, m.p_value != null ? fmtP(m.p_value).replace('p = ', '').replace('p < ', '< ') : '—'),
        h('td', {}, v.text),
        h('td', { class: 'num' }, `${m.base ? m.base.n : 0} / ${m.head ? m.head.n : 0}`)))) : emptyState('No metric matches.'));
  };
  filter.addEventListener('input', draw);
  draw();
  root.append(
    h('p', {}, h('strong', { class: 'mono' }, shortSha(head.sha)), ` ${firstLine(head.message) || ''} against `,
      h('strong', { class: 'mono' }, shortSha(base.sha)), ` on ${target || 'every target'}: `,
      `${rows.length} metrics, ${count('better')} better, ${count('worse')} worse, ${count('ns')} without a significant change.`),
    h('p', { class: 'hint' }, `Green: better, red: worse, both at p < ${ALPHA} (two-sided Mann–Whitney U on the raw samples of each commit's latest run). Grey: not significant.`),
    h('div', { class: 'controls' }, labelled('Filter', filter)),
    cmp.metrics.length ? body : emptyState('These commits have no metric in common on this target.'));
  return null;
}
