// The dashboard's checks in headless Chromium, driven by playwright-core.
//
//   node tests/browser/dashboard.mjs EXPECT.json
//
// EXPECT.json (written by test_dashboard.py) holds the server's URL, the
// admin token, where screenshots go, and what the API says each view must
// show. Every check runs on a fresh browser context; any console error or
// page error it causes is recorded against it (a check that provokes an API
// failure on purpose allows the failed request's own error). The results,
// one object per check, go to the file EXPECT.results names.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const base = cfg.base;
const results = [];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function eq(a, b, msg) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}

async function check(name, fn, { allow, viewport } = {}) {
  const context = await browser.newContext({ viewport: viewport || DESKTOP });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push({ text: m.text(), url: m.location().url });
  });
  page.on('pageerror', (e) => errors.push({ text: 'page error: ' + e.message, url: '' }));
  const r = { name, ok: true, error: null, details: {}, console_errors: [], ms: 0 };
  const t0 = Date.now();
  try {
    r.details = (await fn(page)) || {};
  } catch (e) {
    r.ok = false;
    r.error = String((e && e.stack) || e);
    await page.screenshot({ path: path.join(cfg.shots, `FAILED-${name}.png`), fullPage: true }).catch(() => {});
  }
  r.console_errors = errors.filter((e) => !(allow && allow(e)));
  r.ms = Date.now() - t0;
  results.push(r);
  console.log(`${r.ok && !r.console_errors.length ? 'ok    ' : 'FAILED'} ${name} (${r.ms} ms)${r.error ? '\n' + r.error : ''}` +
    (r.console_errors.length ? '\n  console: ' + JSON.stringify(r.console_errors) : ''));
  await context.close();
}

// Waits until the view has rendered (or shown its error) and every chart in sight is drawn.
async function ready(page) {
  await page.waitForFunction(() => {
    const m = document.querySelector('#main');
    return m && (m.dataset.state === 'ready' || m.dataset.state === 'error');
  }, null, { timeout: 20000 });
  await page.waitForFunction(() => [...document.querySelectorAll('[data-chart]')].every((b) => {
    const r = b.getBoundingClientRect();
    const inView = r.bottom > 0 && r.top < innerHeight;
    return b.dataset.state === 'ready' || !inView || !b.isConnected;
  }), null, { timeout: 20000 });
}

async function open(page, hash) {
  await page.goto(base + '/' + hash);
  await ready(page);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(cfg.shots, name + '.png'), fullPage: true });
}

// What the trend chart draws: points and lines per dataset, markers from the annotations.
function chartInfo(page, sel = '[data-chart="trend"]') {
  return page.evaluate((sel) => {
    const box = document.querySelector(sel);
    const chart = window.Chart.getChart(box.querySelector('canvas'));
    const lines = chart.data.datasets.filter((d) => d.bl && d.bl.role === 'line');
    const anns = chart.config.options.plugins.annotation.annotations;
    const markers = Object.keys(anns).filter((k) => k.startsWith('marker-')).map((k) => anns[k].blMarker);
    const xs = chart.scales.x;
    const visible = [];
    for (const d of lines) for (const p of d.data) if (p.x >= xs.min && p.x <= xs.max) visible.push(p.raw.run_id);
    return {
      points: lines.reduce((a, d) => a + d.data.length, 0), lines: lines.length,
      labels: lines.map((d) => d.label), markers: markers.length,
      marker_kinds: markers.map((m) => m.kind), visible: visible.sort((a, b) => a - b),
      box_points: Number(box.dataset.points), box_markers: Number(box.dataset.markers),
    };
  }, sel);
}

// The page coordinates of the marker of an incident (or the first of a kind).
function markerPosition(page, incident) {
  return page.evaluate((incident) => {
    const canvas = document.querySelector('[data-chart="trend"] canvas');
    const chart = window.Chart.getChart(canvas);
    const anns = chart.config.options.plugins.annotation.annotations;
    const key = Object.keys(anns).find((k) => k.startsWith('marker-') && anns[k].blMarker.incident_id === incident);
    if (!key) return null;
    const a = anns[key];
    const r = canvas.getBoundingClientRect();
    return {
      x: r.left + chart.scales.x.getPixelForValue(a.xValue),
      y: r.top + chart.scales.y.getPixelForValue(a.yValue) + (a.yAdjust || 0),
      kind: a.blMarker.kind,
    };
  }, incident);
}

function metricHash(v) {
  return `#/trends?project=${v.project}&scenario=${v.scenario}&metric=${v.metric}`;
}

async function hashOf(page) {
  return page.evaluate(() => location.hash);
}

async function waitHash(page, prefix) {
  await page.waitForFunction((p) => location.hash.startsWith(p), prefix, { timeout: 10000 });
  await ready(page);
}

// --------------------------------------------------------------------------

await check('overview', async (page) => {
  await open(page, '#/');
  const d = await page.evaluate(() => ({
    targets: [...document.querySelectorAll('tr[data-target]')].map((t) => t.dataset.target),
    commits: document.querySelectorAll('tr[data-commit]').length,
    incidents: document.querySelectorAll('tr[data-incident]').length,
    projects: [...document.querySelectorAll('[data-project]')].map((p) => p.dataset.project),
    workers: [...document.querySelectorAll('tr[data-target] li')].map((li) => li.textContent),
    failed_reasons: document.querySelectorAll('.reason').length,
  }));
  eq(d.incidents, cfg.overview.incidents.length, 'open incidents listed');
  eq(d.projects, cfg.overview.projects.map((p) => p.name), 'projects');
  assert(d.workers.some((w) => w.startsWith('w3')), 'worker w3 is listed');
  await shot(page, 'overview');
  return d;
});

await check('trends_grid', async (page) => {
  await open(page, '#/trends?project=demo');
  const cards = await page.locator('[data-key]').count();
  // The small charts load as they scroll into view: scroll through, then every one is drawn.
  for (let y = 0; y < 20000; y += 600) {
    await page.evaluate((y) => window.scrollTo(0, y), y);
    if (await page.evaluate(() => innerHeight + scrollY >= document.documentElement.scrollHeight - 2)) break;
  }
  await page.waitForFunction(() => [...document.querySelectorAll('[data-chart="grid"]')].every((b) => b.dataset.state === 'ready'),
    null, { timeout: 20000 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'trends-grid');
  return { cards, expected_cards: cfg.demo_series };
});

for (const [name, v, file] of [['trend_leak', cfg.leak, 'trends-leak'], ['trend_drift', cfg.drift, null],
  ['trend_synth', cfg.synth, 'trends-synth']]) {
  await check(name, async (page) => {
    await open(page, metricHash(v));
    const c = await chartInfo(page);
    eq(c.box_points, c.points, 'points noted on the chart box');
    eq(c.box_markers, c.markers, 'markers noted on the chart box');
    const listed = await page.locator('ul.markers a[data-marker-kind]').count();
    eq(listed, c.markers, 'markers listed under the chart');
    if (file) await shot(page, file);
    return {
      ...c, expected_points: v.points, expected_markers: v.markers, expected_lines: v.series.length,
    };
  });
}

await check('marker_click_leak', async (page) => {
  await open(page, metricHash(cfg.leak));
  const pos = await markerPosition(page, cfg.leak_incident.id);
  assert(pos, `no marker of incident ${cfg.leak_incident.id} on the chart`);
  await page.mouse.move(pos.x, pos.y);
  await page.waitForFunction(() => document.querySelector('.marker-info').textContent.includes('click to open'), null, { timeout: 5000 });
  await page.mouse.click(pos.x, pos.y);
  await waitHash(page, '#/incidents/');
  const opened = Number(await page.locator('h1[data-incident]').getAttribute('data-incident'));
  await shot(page, 'incident-leak');
  return { opened, expected: cfg.leak_incident.id, kind: pos.kind };
});

await check('marker_click_synth', async (page) => {
  await open(page, metricHash(cfg.synth));
  const inc = cfg.synth_incidents[0].id;
  const pos = await markerPosition(page, inc);
  assert(pos, `no marker of incident ${inc}`);
  eq(pos.kind, 'regression', 'marker kind');
  await page.mouse.click(pos.x, pos.y);
  await waitHash(page, '#/incidents/');
  const opened = Number(await page.locator('h1[data-incident]').getAttribute('data-incident'));
  return { opened, expected: inc };
});

await check('point_click', async (page) => {
  await open(page, metricHash(cfg.leak));
  const p = await page.evaluate(() => {
    const canvas = document.querySelector('[data-chart="trend"] canvas');
    const chart = window.Chart.getChart(canvas);
    const i = chart.data.datasets.findIndex((d) => d.bl && d.bl.role === 'line');
    const meta = chart.getDatasetMeta(i);
    const j = Math.floor(meta.data.length / 2);
    const el = meta.data[j];
    const r = canvas.getBoundingClientRect();
    return { x: r.left + el.x, y: r.top + el.y, run: chart.data.datasets[i].data[j].raw.run_id };
  });
  await page.mouse.click(p.x, p.y);
  await waitHash(page, '#/runs/');
  const opened = Number((await hashOf(page)).split('/')[2]);
  const run = await (await fetch(`${base}/api/v1/runs/${opened}`)).json();
  await page.waitForFunction(() => [...document.querySelectorAll('[data-chart="run-series"]')].every((b) => b.dataset.state === 'ready'),
    null, { timeout: 10000 });
  const charts = await page.locator('[data-chart="run-series"]').count();
  const metrics = await page.locator('tr[data-metric]').count();
  eq(metrics, run.metrics.length, 'metrics of the run');
  assert(await page.getByText('Build log').count() > 0, 'the build log section');
  await shot(page, 'run');
  return { opened, expected: p.run, timeseries_charts: charts, expected_timeseries: run.timeseries.length };
});

await check('bisection', async (page) => {
  const inc = cfg.synth_incidents[0].id;
  await open(page, `#/incidents/${inc}`);
  const card = page.locator(`article[data-alert="${cfg.bisected_alert}"]`);
  const steps = await card.locator('table.steps tbody tr').count();
  const confirmation = await card.locator('[data-confirmation]').getAttribute('data-confirmation');
  await shot(page, 'incident-bisection');
  await open(page, `#/incidents/${cfg.leak_incident.id}`);
  const without = await page.locator('[data-bisection="none"]').count();
  return { steps, confirmation, without_bisection: without };
});

await check('permalink', async (page) => {
  await open(page, metricHash(cfg.synth));
  await page.getByRole('button', { name: 'Zoom in' }).click();
  await page.getByRole('button', { name: 'Zoom in' }).click();
  await page.waitForFunction(() => location.hash.includes('from='), null, { timeout: 5000 });
  const zoomed = (await chartInfo(page)).visible;
  assert(zoomed.length > 0 && zoomed.length < cfg.synth.points, `zooming in left ${zoomed.length} points in view`);
  const url = page.url();
  const other = await page.context().newPage();
  await other.goto(url);
  await ready(other);
  const restored = (await chartInfo(other)).visible;
  const selects = async (pg) => pg.evaluate(() => [...document.querySelectorAll('form.controls select')].map((s) => s.value));
  eq(await selects(other), await selects(page), 'the controls of the restored view');
  await other.close();
  return { url, zoomed, restored };
});

await check('mail_link', async (page) => {
  // server/notify.c writes "<public_url>/#/incidents/<id>" into the alert mail.
  await page.goto(`${base}/#/incidents/${cfg.drift_incident.id}`);
  await ready(page);
  const opened = Number(await page.locator('h1[data-incident]').getAttribute('data-incident'));
  return { opened, expected: cfg.drift_incident.id };
});

await check('compare', async (page) => {
  const c = cfg.compare;
  await open(page, `#/compare?project=demo&head=${c.head}&target=${c.target}`);
  const rows = await page.locator('tr[data-verdict]').count();
  const worse = await page.locator('tr[data-verdict="worse"]').count();
  const expectedWorse = c.api.metrics.filter((m) => m.p_value != null && m.p_value < 0.05 && m.better === false).length;
  await shot(page, 'compare');
  return { rows, expected_rows: c.api.metrics.length, worse, expected_worse: expectedWorse };
});

await check('report', async (page) => {
  await open(page, `#/report?project=demo&commit=${cfg.report.commit.sha}&target=${cfg.report.target}`);
  const statuses = await page.locator('tr[data-status]').evaluateAll((rows) => rows.map((r) => r.dataset.status));
  const marks = await page.locator('.checkmark').allTextContents();
  eq(marks.length, cfg.report.passed + cfg.report.failed, 'a ✓ or ✗ per measured goal');
  await shot(page, 'report');
  return { statuses, expected_statuses: cfg.report.rows.map((r) => r.status) };
});

await check('empty', async (page) => {
  await open(page, '#/trends?project=empty');
  const text = await page.locator('[data-empty]').first().textContent();
  assert(text.includes('No results for empty yet'), `the empty state says: ${text}`);
  await shot(page, 'empty');
  await open(page, '#/report?project=empty');
  const goals = await page.locator('[data-empty]').first().textContent();
  assert(goals.includes('No goals are set'), `the report's empty state says: ${goals}`);
  return { text };
});

// The API fails: the database is down (503), then a request cannot reach the server.
await check('api_failure', async (page) => {
  await page.route('**/api/v1/overview**', (route) => route.fulfill({
    status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'unavailable', message: 'database unavailable' } }),
  }));
  await open(page, '#/');
  const box = page.locator('[data-api-error="503"]');
  const text = await box.textContent();
  await shot(page, 'api-error');
  await page.unroute('**/api/v1/overview**');
  await page.getByRole('button', { name: 'Try again' }).click();
  await page.waitForFunction(() => document.querySelector('#main').dataset.state === 'ready' &&
    !document.querySelector('[data-api-error]'), null, { timeout: 10000 });
  const recovered = (await page.locator('tr[data-target]').count()) > 0;
  await page.route('**/api/v1/series/*/points**', (route) => route.abort('connectionrefused'));
  await open(page, metricHash(cfg.synth));
  const network = await page.locator('[data-api-error="network"]').count();
  assert(network === 1, 'a request that cannot reach the server shows the error');
  return { text, recovered };
}, { allow: (e) => /\/api\/v1\/(overview|series\/[0-9]+\/points)/.test(e.url) || /\/api\/v1\/(overview|series)/.test(e.text) });

await check('keyboard', async (page) => {
  await open(page, metricHash(cfg.synth));
  const seen = [];
  let reachedMetric = false, reachedZoom = false, onMarker = false;
  for (let i = 0; i < 80 && !onMarker; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      return { tag: el.tagName, name: el.getAttribute('name'), text: el.textContent.trim().slice(0, 40), marker: el.dataset.markerKind || null };
    });
    seen.push(f);
    if (f.tag === 'SELECT' && f.name === 'metric') reachedMetric = true;
    if (f.tag === 'BUTTON' && f.text === 'Zoom in') reachedZoom = true;
    if (f.marker === 'regression') onMarker = true;
  }
  assert(onMarker, 'Tab reaches the regression marker link: ' + JSON.stringify(seen.slice(-5)));
  await page.keyboard.press('Enter');
  await waitHash(page, '#/incidents/');
  const opened = Number(await page.locator('h1[data-incident]').getAttribute('data-incident'));
  return { reached_metric_select: reachedMetric, reached_zoom: reachedZoom, opened, expected: cfg.synth_incidents[0].id };
});

await check('acknowledge', async (page) => {
  const inc = cfg.synth_incidents[0].id;
  const alert = cfg.bisected_alert;
  await open(page, `#/incidents/${inc}`);
  await page.locator(`button[data-action="acknowledged"][data-alert="${alert}"]`).click();
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible', timeout: 5000 });
  const askedForToken = await dialog.isVisible();
  await page.locator('#token-input').fill(cfg.admin);
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.locator(`article[data-alert="${alert}"][data-state="acknowledged"]`).waitFor({ timeout: 10000 });
  const shown = await page.locator(`article[data-alert="${alert}"]`).getAttribute('data-state');
  await shot(page, 'incidents-acknowledged');
  // Kept for the tab: changing another incident's alerts asks nothing. The
  // fix commit has usually resolved the drift's alerts: they are reopened.
  await open(page, `#/incidents/${cfg.drift_incident.id}`);
  const alerts = cfg.drift_incident.alerts;
  const to = alerts.every((a) => a.state === 'open') ? 'resolved' : 'open';
  await page.locator(`button[data-bulk="${to}"]`).click();
  const askedAgain = await dialog.isVisible();
  await page.waitForFunction(([n, to]) => document.querySelectorAll(`article[data-state="${to}"]`).length >= n,
    [alerts.length, to], { timeout: 10000 });
  await open(page, '#/incidents?project=demo');
  await shot(page, 'incidents');
  return { alert, asked_for_token: askedForToken, shown_state: shown, asked_again: askedAgain, changed: alerts.map((a) => a.id), to };
});

await check('phone', async (page) => {
  const overflowing = [];
  const pages = [['#/', 'phone-overview'], [metricHash(cfg.synth), 'phone-trends'],
    [`#/incidents/${cfg.leak_incident.id}`, 'phone-incident'], ['#/report?project=demo', null],
    [`#/compare?project=demo&head=${cfg.compare.head}&target=t2`, null], [`#/runs/${cfg.leak_run.id}`, 'phone-run']];
  for (const [hash, file] of pages) {
    await open(page, hash);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    if (wide) overflowing.push(hash);
    if (file) await shot(page, file);
  }
  return { overflowing };
}, { viewport: PHONE });

await browser.close();
fs.writeFileSync(cfg.results, JSON.stringify(results, null, 1));
