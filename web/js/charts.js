// Chart.js glue: trend charts (one line per hardware target, its p5-p95
// band, detection markers, zoom and pan) and the series inside one run.
// Chart.js and its plugins are the npm packages index.html loads; their UMD
// builds register the annotation and zoom plugins and the date adapter on
// the global Chart.

import { fmtP, fmtPct, fmtTime, fmtValue, firstLine, shortSha } from './dom.js';

// Okabe-Ito: told apart by people with colour-blindness too.
export const TARGET_COLORS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#4d4d4d', '#8c6d1f'];

// Each marker kind has a colour and a shape, so colour is never the only cue.
export const MARKERS = {
  regression: { color: '#d1242f', style: 'triangle', rotation: 0, sym: '▲', label: 'regression' },
  improvement: { color: '#1a7f37', style: 'triangle', rotation: 180, sym: '▼', label: 'improvement' },
  leak: { color: '#8250df', style: 'rectRot', rotation: 0, sym: '◆', label: 'memory leak' },
  drift: { color: '#bc4c00', style: 'circle', rotation: 0, sym: '●', label: 'accuracy drift' },
  degradation: { color: '#6e4a1e', style: 'rect', rotation: 0, sym: '■', label: 'endurance degradation' },
};

export function markerStyle(kind) {
  return MARKERS[kind] || MARKERS.regression;
}

export function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

// Marks the chart's box ready, with the time of its first frame, for tests and the benchmark.
const readyPlugin = {
  id: 'blReady',
  afterRender(chart) {
    const box = chart.canvas.parentElement;
    if (box && !box.dataset.renderedAt) {
      box.dataset.renderedAt = performance.now().toFixed(1);
      box.dataset.state = 'ready';
      box.dispatchEvent(new CustomEvent('chart-ready', { bubbles: true }));
    }
  },
};

export function chartLibraryLoaded() {
  return typeof window.Chart === 'function' && !!window.Chart.registry.plugins.get('annotation') &&
    !!window.Chart.registry.plugins.get('zoom');
}

function zoomOptions(onRange) {
  const done = ({ chart }) => onRange && onRange({ min: chart.scales.x.min, max: chart.scales.x.max });
  return {
    limits: { x: { min: 'original', max: 'original' } },
    pan: { enabled: true, mode: 'x', modifierKey: 'shift', onPanComplete: done },
    zoom: {
      mode: 'x',
      wheel: { enabled: true, modifierKey: 'ctrl' },
      pinch: { enabled: true },
      drag: { enabled: true, threshold: 8, backgroundColor: 'rgba(11, 92, 173, 0.12)', borderColor: '#0b5cad', borderWidth: 1 },
      onZoomComplete: done,
    },
  };
}

/*
 * A trend chart on canvas.
 *   lines:   [{label, color, points: [{x, y, lo, hi, raw}]}]  (raw: the API's point)
 *   markers: [{x, y, kind, raw}]                              (raw: the API's marker)
 *   unit, xMode ('commit': x is the commit's position; 'time'), commitLabel(x),
 *   compact (small multiples: no band, no axis titles), onPoint(raw, line),
 *   onMarker(raw), onMarkerHover(raw | null), onRange({min, max}).
 * Returns the Chart.
 */
export function trendChart(canvas, o) {
  const datasets = [];
  o.lines.forEach((line, i) => {
    if (!o.compact) {
      datasets.push({
        label: line.label + ' p5', data: line.points.map((p) => ({ x: p.x, y: p.lo })),
        borderWidth: 0, pointRadius: 0, pointHoverRadius: 0, pointHitRadius: 0, fill: false, bl: { role: 'lo' },
      });
      datasets.push({
        label: line.label + ' p95', data: line.points.map((p) => ({ x: p.x, y: p.hi })),
        borderWidth: 0, pointRadius: 0, pointHoverRadius: 0, pointHitRadius: 0, fill: '-1',
        backgroundColor: alpha(line.color, 0.16), bl: { role: 'hi' },
      });
    }
    datasets.push({
      label: line.label, data: line.points, borderColor: line.color, backgroundColor: line.color,
      borderWidth: o.compact ? 1.4 : 1.8,
      pointRadius: o.compact ? (line.points.length > 60 ? 0 : 1.5) : (line.points.length > 800 ? 0 : line.points.length > 300 ? 1 : 2.5),
      pointHoverRadius: 5, pointHitRadius: o.compact ? 3 : 5, fill: false, bl: { role: 'line', index: i, line },
    });
  });

  let lastMarkerClick = 0;
  const annotations = {};
  o.markers.forEach((m, i) => {
    const st = markerStyle(m.kind);
    if (!o.compact) {
      annotations['mline-' + i] = {
        type: 'line', xMin: m.x, xMax: m.x, borderColor: alpha(st.color, 0.4), borderWidth: 1,
        borderDash: [4, 4], drawTime: 'beforeDatasetsDraw',
      };
    }
    annotations['marker-' + i] = {
      type: 'point', xValue: m.x, yValue: m.y, radius: o.compact ? 5 : 8, pointStyle: st.style,
      rotation: st.rotation, backgroundColor: st.color, borderColor: '#ffffff', borderWidth: 1.5,
      yAdjust: o.compact ? -8 : -15,
      blMarker: m.raw,
      click: () => {
        lastMarkerClick = Date.now();
        if (o.onMarker) o.onMarker(m.raw);
      },
      enter: () => {
        canvas.style.cursor = 'pointer';
        if (o.onMarkerHover) o.onMarkerHover(m.raw);
      },
      leave: () => {
        canvas.style.cursor = '';
        if (o.onMarkerHover) o.onMarkerHover(null);
      },
    };
  });

  const unit = o.unit;
  const xScale = o.xMode === 'time'
    ? { type: 'time', ticks: { maxRotation: 0, autoSkipPadding: 16 }, title: { display: !o.compact, text: 'time of the run' } }
    : {
      type: 'linear', min: -0.5, max: Math.max(0.5, o.nCommits - 0.5),
      ticks: {
        precision: 0, maxRotation: 0, autoSkipPadding: 14,
        callback: (v) => (Number.isInteger(v) ? o.commitLabel(v) : ''),
      },
      title: { display: !o.compact, text: 'commits, oldest to newest' },
    };

  return new window.Chart(canvas, {
    type: 'line',
    data: { datasets },
    plugins: [readyPlugin],
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      spanGaps: true,
      layout: { padding: { top: o.compact ? 10 : 18, right: 8 } },
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: xScale,
        y: {
          grace: '6%',
          title: { display: !o.compact && !!unit, text: unit },
          ticks: { callback: (v) => fmtValue(v, unit), maxTicksLimit: o.compact ? 4 : 8 },
        },
      },
      onClick: (evt, _els, chart) => {
        const hits = chart.getElementsAtEventForMode(evt, 'nearest', { intersect: true }, true)
          .filter((e) => chart.data.datasets[e.datasetIndex].bl?.role === 'line');
        if (!hits.length || !o.onPoint) return;
        const ds = chart.data.datasets[hits[0].datasetIndex];
        const point = ds.data[hits[0].index].raw;
        // A marker sits above its point: a click on it must not also open the run.
        setTimeout(() => {
          if (Date.now() - lastMarkerClick > 300) o.onPoint(point, ds.bl.line);
        }, 0);
      },
      plugins: {
        legend: {
          display: !o.compact || o.lines.length > 1,
          labels: { filter: (item, data) => data.datasets[item.datasetIndex].bl?.role === 'line', boxWidth: 12 },
        },
        tooltip: {
          filter: (item) => item.dataset.bl?.role === 'line',
          callbacks: {
            title: (items) => {
              const p = items[0]?.raw?.raw;
              return p ? `${shortSha(p.commit)} · ${fmtTime(p.ts)}` : '';
            },
            label: (item) => {
              const p = item.raw.raw;
              return `${item.dataset.label}: ${fmtValue(p.value, unit)}  (p5–p95 ${fmtValue(p.lo, unit)} – ${fmtValue(p.hi, unit)}, n = ${p.n})`;
            },
            afterBody: (items) => {
              const p = items[0]?.raw?.raw;
              if (!p) return [];
              return [p.author ? `by ${p.author}` : 'author unknown', firstLine(p.message) || '(no commit message)',
                o.compact ? 'click: open this metric' : 'click a point: open its run'];
            },
          },
        },
        annotation: { clip: false, annotations },
        zoom: o.compact ? false : zoomOptions(o.onRange),
      },
    },
  });
}

/* The text of a marker for lists and the hover line. */
export function markerText(m, unit) {
  const st = markerStyle(m.kind);
  let change = '';
  if (m.kind === 'leak') change = m.after != null ? ` ${fmtValue(m.after, 'bytes/req')}` : '';
  else if (m.change_pct != null) change = ' ' + fmtPct(m.change_pct);
  const where = m.incident_id ? `incident #${m.incident_id}` : m.run_id ? `run #${m.run_id}` : '';
  return `${st.sym} ${st.label}${change} at ${shortSha(m.commit)}` +
    (m.value != null && m.kind !== 'leak' ? ` (${fmtValue(m.value, unit)})` : '') +
    (m.p_value != null ? `, ${fmtP(m.p_value)}` : '') + (m.state ? `, ${m.state}` : '') + (where ? ` → ${where}` : '');
}

/*
 * The series recorded inside one run: series [{label, color, t, v}] over
 * seconds into the run (or the request index for rss_per_request).
 */
export function runSeriesChart(canvas, o) {
  const datasets = o.series.map((s) => ({
    label: s.label,
    data: s.t.map((t, i) => ({ x: t, y: s.v[i] })),
    borderColor: s.color, backgroundColor: s.color, borderWidth: 1.5,
    pointRadius: s.t.length > 150 ? 0 : 1.5, pointHitRadius: 4, fill: false,
  }));
  return new window.Chart(canvas, {
    type: 'line',
    data: { datasets },
    plugins: [readyPlugin],
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: { type: 'linear', title: { display: true, text: o.xTitle }, ticks: { maxRotation: 0 } },
        y: { title: { display: !!o.unit, text: o.unit }, ticks: { callback: (v) => fmtValue(v, o.unit), maxTicksLimit: 6 } },
      },
      plugins: {
        legend: { display: o.series.length > 1 },
        tooltip: {
          callbacks: {
            title: (items) => `${o.xTitle.startsWith('request') ? 'request' : 't ='} ${Number(items[0].parsed.x.toPrecision(4))}${o.xTitle.startsWith('request') ? '' : ' s'}`,
            label: (item) => `${item.dataset.label}: ${fmtValue(item.parsed.y, o.unit)}`,
          },
        },
        zoom: zoomOptions(null),
      },
    },
  });
}
