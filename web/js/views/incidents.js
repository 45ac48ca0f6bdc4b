// Incidents: the alerts of one commit across targets and metrics, filtered
// by state and kind; acknowledge, resolve or mark them invalid with the
// admin token; an alert's bisection steps and confirmation when present.

import { askAdminToken } from '../admin.js';
import { adminToken, api, enc, setAdminToken } from '../api.js';
import {
  badge, clear, emptyState, firstLine, fmtAgo, fmtP, fmtPct, fmtTime, fmtValue, h, kv, labelled, select,
  shortSha, table,
} from '../dom.js';
import { href, navigate } from '../state.js';

export const title = 'Incidents';

const STATES = ['open', 'acknowledged', 'resolved', 'invalid'];
const KINDS = ['perf', 'accuracy', 'leak', 'degradation'];
const KIND_LABEL = { perf: 'performance regression', accuracy: 'accuracy drift', leak: 'memory leak', degradation: 'endurance degradation' };
const ACTIONS = [
  { state: 'acknowledged', label: 'Acknowledge', all: 'Acknowledge all' },
  { state: 'resolved', label: 'Resolve', all: 'Resolve all' },
  { state: 'invalid', label: 'Mark invalid', all: 'Mark all invalid' },
  { state: 'open', label: 'Reopen', all: 'Reopen all' },
];

async function listView(root, ctx) {
  const { params, signal } = ctx;
  const state = STATES.includes(params.state) ? params.state : '';
  const kind = KINDS.includes(params.kind) ? params.kind : '';
  const q = new URLSearchParams();
  if (params.project) q.set('project', params.project);
  if (state) q.set('state', state);
  const [projects, incidents] = await Promise.all([
    api.get('/api/v1/projects', signal),
    api.get('/api/v1/incidents?' + q, signal),
  ]);
  const shown = kind ? incidents.filter((i) => (i.kinds || []).includes(kind)) : incidents;
  const go = (changes) => navigate('incidents', { project: params.project, state, kind, ...changes });
  clear(root);
  root.append(h('h1', {}, 'Incidents'),
    h('form', { class: 'controls', onsubmit: (e) => e.preventDefault(), 'aria-label': 'Filter incidents' },
      labelled('Project', select({ name: 'project', onchange: (e) => go({ project: e.target.value }) },
        [{ value: '', label: 'All projects' }, ...projects.map((p) => p.name)], params.project || '')),
      labelled('State', select({ name: 'state', onchange: (e) => go({ state: e.target.value }) },
        [{ value: '', label: 'Any state' }, ...STATES], state)),
      labelled('Kind', select({ name: 'kind', onchange: (e) => go({ kind: e.target.value }) },
        [{ value: '', label: 'Any kind' }, ...KINDS.map((k) => ({ value: k, label: KIND_LABEL[k] }))], kind))));
  if (!shown.length) {
    root.append(emptyState(incidents.length || state || kind || params.project ? 'No incidents match these filters.' : 'No incidents yet.',
      h('p', {}, 'An incident groups the alerts one commit raised: a regression of more than the threshold, an accuracy drift, a leak or an endurance degradation.')));
    return null;
  }
  root.append(h('p', { class: 'muted' }, `${shown.length} incident${shown.length === 1 ? '' : 's'}`),
    table(['Incident', 'Commit', 'Kinds', 'Targets', 'Alerts', 'State', 'Mail'], shown.map((i) => h('tr', { dataset: { incident: String(i.id) } },
      h('td', {}, h('a', { href: href(['incidents', i.id]) }, `#${i.id}`), h('div', { class: 'small muted' }, fmtAgo(i.created_at))),
      h('td', {}, h('span', { class: 'mono' }, shortSha(i.commit)), ' ', firstLine(i.message),
        h('div', { class: 'small muted' }, `${i.project} · ${i.author || 'author unknown'}`)),
      h('td', {}, h('div', { class: 'status-list' }, (i.kinds || []).map((k) => badge(k, k)))),
      h('td', {}, `${(i.targets || []).join(', ')}`, h('div', { class: 'small muted' }, `of ${i.active_targets} active`)),
      h('td', { class: 'num' }, (i.alerts || []).length),
      h('td', {}, badge(i.state, i.state)),
      h('td', {}, badge(i.mail_state, i.mail_state))))));
  return null;
}

/* Sets alerts' state with the admin token, asking for it once. Returns true when done. */
async function setStates(ids, state, msg) {
  let token = adminToken();
  if (!token) token = await askAdminToken('Changing an alert needs the admin token.');
  if (!token) return false;
  msg.textContent = 'Saving…';
  try {
    for (const id of ids) await api.patch(`/api/v1/alerts/${enc(id)}`, { state });
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      setAdminToken(null);
      msg.textContent = 'The server refused the admin token; sign in again with a valid one.';
    } else {
      msg.textContent = `Could not change the alert: ${e.message}`;
    }
    return false;
  }
  return true;
}

function bisectionSection(a) {
  const d = a.details || {};
  const b = d.bisection;
  const c = d.confirmation;
  const parts = [];
  if (!b) {
    parts.push(h('p', { class: 'muted small', dataset: { bisection: 'none' } }, 'No bisection for this alert.'));
  } else {
    const look = b.state === 'done' ? 'done' : b.state === 'failed' ? 'failed' : b.state === 'undecided' ? 'none' : 'running';
    parts.push(h('p', { dataset: { bisection: b.state } }, 'Bisection ', badge(b.state, look),
      ` between good ${shortSha(b.good)} and bad ${shortSha(b.bad)}`,
      b.first_bad && b.state !== 'undecided' ? [': first bad commit ', h('strong', { class: 'mono' }, shortSha(b.first_bad))]
        : b.state === 'done' ? ': no single first bad commit' : b.state === 'undecided' ? ': nobody is blamed' : '',
      b.led_by ? ` (placed by the counted ${b.led_by})` : ''));
    if (b.note) parts.push(h('p', { class: 'small', dataset: { note: b.state } }, b.note));
    const steps = b.steps || [];
    parts.push(steps.length
      ? table([{ label: 'Round', class: 'num' }, 'Commit', 'Verdict', { label: 'Change', class: 'num' }, { label: 'p', class: 'num' }, { label: 'Runs', class: 'num' }],
        steps.map((s) => h('tr', { dataset: { step: String(s.round) } },
          h('td', { class: 'num' }, s.round), h('td', { class: 'mono' }, shortSha(s.commit)),
          h('td', {}, badge(s.verdict, s.verdict === 'bad' ? 'fail' : s.verdict === 'good' ? 'pass' : 'none')),
          h('td', { class: 'num' }, fmtPct(s.change_pct)), h('td', { class: 'num' }, s.p_value != null ? Number(s.p_value.toPrecision(2)) : '—'),
          h('td', { class: 'num' }, s.runs ?? '—'))), { class: 'steps' })
      : h('p', { class: 'muted small' }, 'No step has finished yet.'));
  }
  if (c) {
    const what = c.counted ? 'Counted confirmation ' : c.boundary ? `A/B check of ${shortSha(c.commit)} against ${shortSha(c.reference)} `
      : 'Interleaved A/B confirmation ';
    parts.push(h('p', { dataset: { confirmation: c.state } }, what, badge(c.state, c.state === 'confirmed' ? 'fail' : c.state === 'overturned' ? 'pass' : 'pending'),
      c.counted ? ' (exact: one run each)' : c.pairs != null ? ` over ${c.pairs} pairs` : '', c.change_pct != null ? `, ${fmtPct(c.change_pct)}` : '',
      c.p_value != null && !c.counted ? `, ${fmtP(c.p_value)}` : ''));
  }
  return h('div', {}, h('h4', { style: 'margin:0.6rem 0 0.3rem' }, 'Bisection'), parts);
}

function alertCard(a, inc, ctx) {
  const msg = h('p', { class: 'small', role: 'status', 'aria-live': 'polite' });
  const d = a.details || {};
  const unit = a.unit;
  const valueText = a.kind === 'leak'
    ? `${fmtValue(a.after, unit)} (slope after warm-up)`
    : `${fmtValue(a.before, unit)} → ${fmtValue(a.after, unit)} (${fmtPct(a.change_pct)})`;
  const actions = ACTIONS.filter((x) => x.state !== a.state).map((x) => h('button', {
    type: 'button', dataset: { action: x.state, alert: String(a.id) },
    onclick: async (e) => {
      e.target.disabled = true;
      if (await setStates([a.id], x.state, msg)) ctx.rerender();
      else e.target.disabled = false;
    },
  }, x.label));
  return h('article', { class: 'card', dataset: { alert: String(a.id), state: a.state, kind: a.kind }, style: 'margin-bottom:0.8rem' },
    h('h3', {}, badge(a.kind, a.kind), ' ', `${KIND_LABEL[a.kind] || a.kind}: ${a.scenario}/${a.metric} on ${a.target}`, ' ', badge(a.state, a.state)),
    kv([
      ['Change', valueText],
      ['Significance', a.p_value != null ? fmtP(a.p_value) + (d.p_raw != null ? ` (raw samples ${fmtP(d.p_raw)})` : '') : '—'],
      d.shift_lo_pct != null ? ['Shift, 95% interval', `${fmtPct(d.shift_lo_pct)} … ${fmtPct(d.shift_hi_pct)}`] : null,
      ['Commits', h('span', {}, h('span', { class: 'mono' }, a.good_commit ? shortSha(a.good_commit) : '?'), ' good → ',
        h('span', { class: 'mono' }, shortSha(a.bad_commit)), ' bad')],
      d.runs_after != null ? ['Runs', `${d.runs_after} after against ${d.baseline_runs} in the baseline`]
        : d.baseline_runs != null ? ['Runs', `1 suspect run against ${d.baseline_runs} in the baseline`] : null,
      d.source ? ['Found by', d.source] : null,
      (d.suspect_runs || []).length ? ['Suspect runs', `${d.suspect_runs.length} set aside`] : null,
      a.resolved_by ? ['Resolved by', a.resolved_by] : null,
      ['Opened', fmtTime(a.created_at)],
    ]),
    h('p', { class: 'small' },
      h('a', { href: href('trends', { project: inc.project, scenario: a.scenario, metric: a.metric }) }, 'Trend of this metric'),
      a.run_id ? [' · ', h('a', { href: href(['runs', a.run_id]) }, `run #${a.run_id}`)] : null,
      ' · ', h('a', { href: href('compare', { project: inc.project, target: a.target, head: a.bad_commit, base: a.good_commit }) }, 'Compare good and bad')),
    bisectionSection(a),
    h('div', { class: 'buttons', style: 'margin-top:0.6rem' }, actions), msg);
}

async function detailView(root, ctx, id) {
  const inc = await api.get(`/api/v1/incidents/${enc(id)}`, ctx.signal);
  const alerts = inc.alerts || [];
  const msg = h('p', { class: 'small', role: 'status', 'aria-live': 'polite' });
  const bulk = ACTIONS.map((x) => h('button', {
    type: 'button', dataset: { bulk: x.state },
    disabled: alerts.every((a) => a.state === x.state),
    onclick: async (e) => {
      e.target.disabled = true;
      const ids = alerts.filter((a) => a.state !== x.state).map((a) => a.id);
      if (await setStates(ids, x.state, msg)) ctx.rerender();
      else e.target.disabled = false;
    },
  }, x.all));
  clear(root);
  root.append(
    h('p', { class: 'small' }, h('a', { href: href('incidents', { project: inc.project }) }, '← All incidents')),
    h('h1', { dataset: { incident: String(inc.id) } }, `Incident #${inc.id}`, ' ', badge(inc.state, inc.state)),
    h('div', { class: 'card' },
      h('p', { class: 'commit-msg' }, h('strong', { class: 'mono' }, shortSha(inc.commit)), ' ', inc.message || h('span', { class: 'muted' }, '(no commit message)')),
      kv([
        ['Project', inc.project],
        ['Commit', h('span', { class: 'mono' }, inc.commit)],
        ['Author', inc.author || 'unknown'],
        ['Kinds', h('span', { class: 'status-list' }, (inc.kinds || []).map((k) => badge(k, k)))],
        ['Targets', `${(inc.targets || []).join(', ')} — ${(inc.targets || []).length >= inc.active_targets && inc.active_targets > 1 ? 'every target' : `${(inc.targets || []).length} of ${inc.active_targets} active`}`],
        ['E-mail', h('span', {}, badge(inc.mail_state, inc.mail_state), inc.mail_error ? ` ${inc.mail_error}` : '', inc.mailed_at ? ` sent ${fmtTime(inc.mailed_at)}` : '')],
        ['Opened', fmtTime(inc.created_at)],
      ]),
      h('div', { class: 'buttons', style: 'margin-top:0.6rem' }, bulk), msg,
      h('p', { class: 'hint' }, adminToken() ? 'Changes use the admin token of this tab.' : 'Changes ask for the admin token once; it is kept for this tab.')),
    h('h2', {}, `Alerts (${alerts.length})`),
    ...(alerts.length ? alerts.map((a) => alertCard(a, inc, ctx)) : [emptyState('This incident has no alerts.')]));
  return null;
}

export async function render(root, ctx) {
  const id = ctx.path[1];
  if (id !== undefined) {
    if (!/^[0-9]+$/.test(id)) {
      clear(root).append(h('h1', {}, 'Incidents'), emptyState(`There is no incident '${id}'.`, h('p', {}, h('a', { href: href('incidents') }, 'All incidents'))));
      return null;
    }
    try {
      return await detailView(root, ctx, id);
    } catch (e) {
      if (e.status === 404) {
        clear(root).append(h('h1', {}, `Incident #${id}`), emptyState(`There is no incident #${id}.`, h('p', {}, h('a', { href: href('incidents') }, 'All incidents'))));
        return null;
      }
      throw e;
    }
  }
  return listView(root, ctx);
}

