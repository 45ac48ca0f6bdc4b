// Time to first chart in headless Chromium; driven by bench/dashboard.py.
//
//   node bench/dashboard.mjs CFG.json
//
// CFG: {base, chromium, pages: {NAME: hash}, reps, out}. Each round opens
// every page once, in order, each in a fresh browser context (no cache, no
// storage); the first round is a warm-up and is not kept. Writes
// {NAME: [{first, all_in_view, charts_in_view, points_ms, total, returned}]}.

import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});

async function measure(hash) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${cfg.base}/${hash}`);
  // The first chart's first frame.
  await page.waitForSelector('[data-chart][data-rendered-at]', { timeout: 60000 });
  // Then every chart in view (the small multiples load as they scroll in).
  await page.waitForFunction(() => [...document.querySelectorAll('[data-chart]')].every((b) => {
    const r = b.getBoundingClientRect();
    return b.dataset.renderedAt || r.top >= innerHeight || r.bottom <= 0;
  }), null, { timeout: 60000 });
  const r = await page.evaluate(() => {
    const boxes = [...document.querySelectorAll('[data-chart][data-rendered-at]')];
    const times = boxes.map((b) => Number(b.dataset.renderedAt));
    const pts = performance.getEntriesByType('resource').filter((e) => e.name.includes('/points'));
    const trend = document.querySelector('[data-chart="trend"]');
    const note = document.querySelector('[data-downsampled]');
    return {
      first: Math.min(...times),
      all_in_view: Math.max(...times),
      charts_in_view: boxes.length,
      points_ms: pts.length ? Math.max(...pts.map((e) => e.duration)) : 0,
      returned: trend ? Number(trend.dataset.points) : 0,
      total: note ? Number(note.textContent.match(/of ([0-9,]+) points/)[1].replace(/,/g, '')) : 0,
    };
  });
  await context.close();
  if (errors.length) throw new Error(`console errors on ${hash}: ${errors.join('; ')}`);
  return r;
}

const out = Object.fromEntries(Object.keys(cfg.pages).map((k) => [k, []]));
for (let round = 0; round <= cfg.reps; round++) {
  const line = [];
  for (const [name, hash] of Object.entries(cfg.pages)) {
    const r = await measure(hash);
    if (round > 0) out[name].push(r);
    line.push(`${name} ${r.first.toFixed(0)} ms`);
  }
  console.log(`   ${round === 0 ? 'warm-up' : 'round ' + round}: ${line.join(', ')}`);
}
await browser.close();
fs.writeFileSync(cfg.out, JSON.stringify(out));
