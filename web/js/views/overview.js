// Overview: projects; hardware targets with their workers, last heartbeat
// and state; the latest commits with their status per target; open incidents.

import { api } from '../api.js';
import { badge, clear, emptyState, firstLine, fmtAgo, fmtTime, h, shortSha, table } from '../dom.js';
import { href } from '../state.js';

export const title = 'Overview';

function projectCard(p) {
  return h('article', { class: 'card', dataset: { project: p.name } },
    h('h3', {}, h('a', { href: href('trends', { project: p.name }) }, p.name)),
    h('p', { class: 'small muted', style: 'overflow-wrap:anywhere' }, p.repo_url),
    h('p', {}, `${p.series} series · ${p.commits} commits`),
    h('p', {}, p.open_incidents
      ? h('a', { href: href('incidents', { project: p.name, state: 'open' }) },
        badge(`${p.open_incidents} open incident${p.open_incidents === 1 ? '' : 's'}`, 'open'))
      : badge('no open incidents', 'resolved')),
    h('p', { class: 'small muted' }, p.last_run_at ? `last run ${fmtAgo(p.last_run_at)}` : 'no run yet'),
    h('p', { class: 'small' },
      h('a', { href: href('trends', { project: p.name }) }, 'Trends'), ' · ',
      h('a', { href: href('report', { project: p.name }) }, 'Report'), ' · ',
      h('a', { href: href('compare', { project: p.name }) }, 'Compare')));
}

function targetsTable(targets, now) {
  if (!targets.length) {
    return emptyState('No hardware targets yet.',
      h('p', {}, 'Add one with ', h('code', {}, 'benchline target create NAME'),
        ' and a worker with ', h('code', {}, 'benchline worker create --target NAME'), '.'));
  }
  return table(['Target', 'Workers', 'Last heartbeat', 'Jobs'], targets.map((t) => h('tr', { dataset: { target: t.name } },
    h('td', {}, h('strong', {}, t.name), t.active ? null : [' ', badge('inactive', 'none')],
      h('div', { class: 'small muted' }, [t.arch, t.cpu, t.gpu].filter(Boolean).join(' · ') || '—')),
    h('td', {}, t.workers.length ? h('ul', { class: 'markers' }, t.workers.map((w) => h('li', {},
      w.name, ' ', badge(w.state, w.state),
      w.job_id ? h('span', { class: 'small muted' }, ` job #${w.job_id}`) : null,
      h('span', { class: 'small muted' }, ` · heartbeat ${fmtAgo(w.last_heartbeat, now)}`))))
      : h('span', { class: 'muted' }, 'no workers')),
    h('td', { class: 'nowrap', title: t.last_heartbeat ? fmtTime(t.last_heartbeat) : '' }, fmtAgo(t.last_heartbeat, now)),
    h('td', { class: 'nowrap' }, `${t.queued} queued`, h('br'), `${t.running} running`))));
}

function statusCell(c) {
  if (!c.status.length) return h('span', { class: 'muted' }, 'no jobs');
  return h('div', { class: 'status-list', style: 'flex-direction:column;align-items:flex-start' }, c.status.map((s) => {
    const label = `${s.target}: ${s.state}`;
    const b = s.run_id && s.state !== 'failed'
      ? h('a', { href: href(['runs', s.run_id]), title: `run #${s.run_id}` }, badge(label, s.state))
      : badge(label, s.state);
    return h('div', { dataset: { status: s.state, target: s.target } }, b,
      s.jobs > 1 ? h('span', { class: 'small muted' }, ` (${s.jobs} jobs)`) : null,
      s.state === 'failed' && s.fail_reason ? h('span', { class: 'reason' }, s.fail_reason) : null);
  }));
}

function commitsTable(commits) {
  if (!commits.length) {
    return emptyState('No commits benchmarked yet.',
      h('p', {}, 'Commits appear here when a push reaches the webhook or a job is queued (',
        h('code', {}, 'benchline job create'), ').'));
  }
  return table(['Commit', 'Message', 'Status per target'], commits.map((c) => h('tr', { dataset: { commit: c.sha } },
    h('td', { class: 'nowrap' }, c.has_points
      ? h('a', { class: 'mono', href: href('compare', { project: c.project, head: c.sha }) }, shortSha(c.sha))
      : h('span', { class: 'mono' }, shortSha(c.sha)),
      h('div', { class: 'small muted' }, c.project)),
    h('td', {}, firstLine(c.message) || h('span', { class: 'muted' }, '(no message)'),
      h('div', { class: 'small muted' }, (c.author || 'author unknown') + ' · ' + fmtTime(c.committed_at || c.first_seen))),
    h('td', {}, statusCell(c)))));
}

function incidentsList(incidents) {
  if (!incidents.length) return emptyState('No open incidents.', h('p', {}, 'Nothing has regressed, leaked or drifted.'));
  return table(['Incident', 'Commit', 'Kinds', 'Targets', 'State'], incidents.map((i) => h('tr', { dataset: { incident: String(i.id) } },
    h('td', {}, h('a', { href: href(['incidents', i.id]) }, `#${i.id}`), h('div', { class: 'small muted' }, fmtAgo(i.created_at))),
    h('td', {}, h('span', { class: 'mono' }, shortSha(i.commit)), ' ', h('span', { class: 'small' }, firstLine(i.message)),
      h('div', { class: 'small muted' }, i.project)),
    h('td', {}, h('div', { class: 'status-list' }, (i.kinds || []).map((k) => badge(k, k)))),
    h('td', {}, (i.targets || []).join(', ')),
    h('td', {}, badge(i.state, i.state)))));
}

export async function render(root, { params, signal }) {
  const q = new URLSearchParams({ commits: '15' });
  if (params.project) q.set('project', params.project);
  const o = await api.get('/api/v1/overview?' + q, signal);
  const now = new Date(o.generated_at).getTime() || Date.now();
  clear(root);
  root.append(h('h1', {}, params.project ? `Overview of ${params.project}` : 'Overview'));
  if (!o.projects.length) {
    root.append(emptyState('No projects yet.',
      h('p', {}, 'Create one with ', h('code', {}, 'benchline project create NAME --repo URL'),
        ' (or POST /api/v1/projects), point its webhook here, and its results appear on this page.')));
  } else {
    root.append(h('section', { 'aria-labelledby': 'ov-projects' },
      h('h2', { id: 'ov-projects' }, 'Projects'),
      h('div', { class: 'cards' }, o.projects.map(projectCard))));
  }
  root.append(
    h('div', { class: 'grid2' },
      h('section', { 'aria-labelledby': 'ov-targets' }, h('h2', { id: 'ov-targets' }, 'Hardware targets'), targetsTable(o.targets, now),
        h('p', { class: 'hint' }, 'Workers send heartbeats while they run a job: busy = running one, idle = one in the last 10 minutes, silent = none since.')),
      h('section', { 'aria-labelledby': 'ov-incidents' }, h('h2', { id: 'ov-incidents' },
        'Open incidents ', h('a', { class: 'small', href: href('incidents', { project: params.project, state: 'open' }) }, 'all incidents')),
      incidentsList(o.incidents))),
    h('section', { 'aria-labelledby': 'ov-commits' },
      h('h2', { id: 'ov-commits' }, 'Latest commits'), commitsTable(o.commits)));
  return null;
}
