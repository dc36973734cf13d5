// The live page: one server-sent event a second carries the whole page's data; every chart is
// SVG drawn here. Text from records (ids, feature names) only ever goes in as textContent.
'use strict';

const NS = 'http://www.w3.org/2000/svg';
const COLOURS = {
  input: '#2f6fb3', anomaly: '#d63a3a', threshold: '#a50f15',
  p50: '#2e9d5b', p95: '#e5892b', p99: '#8e5bc9', low: [247, 251, 255], high: [253, 141, 60],
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, parent, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function html(tag, parent, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function fixed(value, digits) {
  return value === null || value === undefined || !isFinite(value) ? '–' : Number(value).toFixed(digits);
}

function count(value) {
  return value === null || value === undefined ? '–' : Number(value).toLocaleString('en');
}

function percent(value, digits) {
  return value === null || value === undefined ? '–' : (value * 100).toFixed(digits) + ' %';
}

function clock(ms) {
  if (ms === null || ms === undefined) return '–';
  const t = new Date(ms);
  const pad = (n, w) => String(n).padStart(w || 2, '0');
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// A round step giving about `n` ticks over [0, max].
function ticks(max, n) {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max * 1.0001 + step; v += step) {
    out.push(Number(v.toPrecision(12)));
    if (v >= max) break;
  }
  return out;
}

// Round values inside [low, high], about `n` of them.
function within(low, high, n) {
  const step = ticks(high - low, n)[1] || 1;
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(value) {
  if (Math.abs(value) >= 10000) return (value / 1000).toFixed(0) + 'k';
  if (Math.abs(value) >= 1000) return (value / 1000).toFixed(1) + 'k';
  return String(Number(value.toPrecision(4)));
}

// Lines over a shared x axis (seconds ago), `series`: [{name, colour, values, area, right}]
// with values aligned to `xs` (seconds relative to now, negative). A `right` series has its
// own scale, labelled on the right in its colour.
function lineChart(svg, xs, series, options) {
  clear(svg);
  const box = svg.viewBox.baseVal;
  const m = { left: 52, right: series.some((s) => s.right) ? 46 : 14, top: 26, bottom: 26 };
  const w = box.width - m.left - m.right;
  const h = box.height - m.top - m.bottom;
  const scale = (list) => {
    const values = list.flatMap((s) => s.values.filter((v) => v !== null && isFinite(v)));
    // Some headroom, so a steady line does not run along the top.
    const grid = ticks(Math.max(options.min || 1, ...values) * 1.08, 4);
    return { grid, max: grid[grid.length - 1] };
  };
  const left = scale(series.filter((s) => !s.right));
  const right = scale(series.filter((s) => s.right));
  const x0 = xs.length ? xs[0] : -60;
  const span = Math.max(1, -x0);
  const x = (s) => m.left + ((s - x0) / span) * w;
  const y = (v, axis) => m.top + h - (v / (axis || left).max) * h;
  for (const v of left.grid) {
    el('line', { x1: m.left, x2: m.left + w, y1: y(v), y2: y(v), class: 'grid' }, svg);
    el('text', { x: m.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, svg, label(v));
  }
  for (const s of series.filter((s) => s.right)) {
    right.grid.forEach((v, i) => {
      const at = m.top + h - (i / (right.grid.length - 1)) * h;
      el('text', { x: m.left + w + 6, y: at + 4, fill: s.colour }, svg, label(v));
    });
  }
  const step = span > 240 ? 60 : span > 100 ? 30 : span > 40 ? 10 : 5;
  for (let s = 0; s >= x0; s -= step) {
    el('text', { x: x(s), y: m.top + h + 18, 'text-anchor': 'middle' }, svg,
      s === 0 ? 'now' : s % 60 === 0 ? `${s / 60} min` : `${s} s`);
  }
  el('line', { x1: m.left, x2: m.left + w, y1: m.top + h, y2: m.top + h, class: 'axis' }, svg);
  let legend = m.left;
  for (const s of series) {
    const axis = s.right ? right : left;
    let d = '';
    s.values.forEach((v, i) => {
      if (v === null || !isFinite(v)) return;
      d += `${d && s.values[i - 1] !== null ? 'L' : 'M'}${x(xs[i]).toFixed(1)},${y(v, axis).toFixed(1)}`;
    });
    if (s.area && d) {
      const first = xs[s.values.findIndex((v) => v !== null)];
      const last = xs[s.values.length - 1];
      el('path', { d: `${d}L${x(last)},${y(0)}L${x(first)},${y(0)}Z`, fill: s.colour, 'fill-opacity': 0.12 }, svg);
    }
    el('path', { d: d || `M${m.left},${y(0)}`, fill: 'none', stroke: s.colour, 'stroke-width': 2, class: 'series', 'stroke-linejoin': 'round' }, svg);
    el('rect', { x: legend, y: 8, width: 14, height: 4, fill: s.colour }, svg);
    const name = s.right ? `${s.name} (right axis)` : s.name;
    el('text', { x: legend + 19, y: 14, class: 'title' }, svg, name);
    legend += 40 + name.length * 7;
  }
}

function rates(page) {
  const history = page.history;
  const n = history.input.length;
  // From the first second with records (at least the last minute), up to the whole history.
  const first = history.input.findIndex((v, i) => v > 0 || history.anomalies[i] > 0);
  const from = first < 0 ? n - 60 : Math.max(0, Math.min(first, n - 60));
  const input = history.input.slice(from);
  const anomalies = history.anomalies.slice(from);
  const xs = input.map((_, i) => i - input.length);
  lineChart($('rates'), xs, [
    { name: 'transactions / s', colour: COLOURS.input, values: input, area: true },
    { name: 'anomalies / s', colour: COLOURS.anomaly, values: anomalies, right: true },
  ], { min: 1 });
  const busy = input.filter((v, i) => v > 0 || anomalies[i] > 0).length;
  $('rates').setAttribute('data-nonzero', String(busy));
  $('rates-hint').textContent = `by record time, up to the last ${Math.round(n / 60)} minutes`;
}

function latency(page) {
  const points = page.history.latency;
  const now = page.history.end_s * 1000;
  const xs = points.map((p) => (p[0] - now) / 1000);
  const column = (i) => points.map((p) => p[i]);
  lineChart($('latency'), xs.length ? xs : [-60], [
    { name: 'p50', colour: COLOURS.p50, values: column(1) },
    { name: 'p95', colour: COLOURS.p95, values: column(2) },
    { name: 'p99', colour: COLOURS.p99, values: column(3) },
  ], { min: 10 });
}

function histogram(page) {
  const svg = $('histogram');
  clear(svg);
  const view = page.scores;
  const box = svg.viewBox.baseVal;
  const m = { left: 52, right: 14, top: 26, bottom: 32 };
  const w = box.width - m.left - m.right;
  const h = box.height - m.top - m.bottom;
  const tallest = Math.max(1, ...view.bins.map((b) => b[0] + b[1]));
  const grid = ticks(tallest, 4);
  const ymax = grid[grid.length - 1];
  const x = (s) => m.left + ((s - view.low) / (view.high - view.low)) * w;
  const y = (v) => m.top + h - (v / ymax) * h;
  for (const v of grid) {
    el('line', { x1: m.left, x2: m.left + w, y1: y(v), y2: y(v), class: 'grid' }, svg);
    el('text', { x: m.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, svg, label(v));
  }
  const width = w / Math.max(1, view.bins.length);
  view.bins.forEach((bin, i) => {
    const left = m.left + i * width;
    if (bin[0] > 0) el('rect', { x: left + 0.5, y: y(bin[0]), width: width - 1, height: y(0) - y(bin[0]), fill: COLOURS.input, 'fill-opacity': 0.85, class: 'bin' }, svg);
    if (bin[1] > 0) el('rect', { x: left + 0.5, y: y(bin[0] + bin[1]), width: width - 1, height: y(bin[0]) - y(bin[0] + bin[1]), fill: COLOURS.anomaly, 'fill-opacity': 0.85, class: 'bin' }, svg);
  });
  el('line', { x1: m.left, x2: m.left + w, y1: y(0), y2: y(0), class: 'axis' }, svg);
  for (const s of ticks(view.high - view.low, 5).map((t) => view.low + t)) {
    if (s > view.high) break;
    el('text', { x: x(s), y: m.top + h + 16, 'text-anchor': 'middle' }, svg, s.toFixed(2));
  }
  el('text', { x: m.left + w / 2, y: m.top + h + 30, 'text-anchor': 'middle' }, svg, 'anomaly score');
  if (view.threshold !== null) {
    const tx = x(view.threshold);
    el('line', { x1: tx, x2: tx, y1: m.top - 6, y2: m.top + h, stroke: COLOURS.threshold, 'stroke-width': 2, 'stroke-dasharray': '5 3' }, svg);
    el('text', { x: tx + 5, y: m.top + 4, class: 'title' }, svg, `threshold ${view.threshold.toFixed(4)}`);
  }
  el('rect', { x: m.left + w - 190, y: 8, width: 12, height: 8, fill: COLOURS.input }, svg);
  el('text', { x: m.left + w - 174, y: 16 }, svg, 'normal');
  el('rect', { x: m.left + w - 110, y: 8, width: 12, height: 8, fill: COLOURS.anomaly }, svg);
  el('text', { x: m.left + w - 94, y: 16 }, svg, 'above threshold');
  $('histogram-hint').textContent = view.source === 'transactions'
    ? `latest ${count(view.count)} transactions, scored with the model file`
    : `the latest ${count(view.count)} anomalies' scores (start with --model for every transaction's)`;
}

let drawing = null;     // /api/model's answer
let drawingId = null;   // the model file id it belongs to

function fetchDrawing(id) {
  drawingId = id;
  fetch('/api/model').then((r) => (r.ok ? r.json() : null)).then((answer) => {
    drawing = answer;
  }).catch(() => { drawingId = null; });
}

function blend(t) {
  const c = COLOURS.low.map((low, i) => Math.round(low + (COLOURS.high[i] - low) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function contour(page) {
  const svg = $('contour');
  const file = page.model.file;
  if (file && file.id !== drawingId) fetchDrawing(file.id);
  const shape = drawing && drawing.contour;
  clear(svg);
  if (!shape) {
    $('contour-note').textContent = file
      ? `the contour is drawn for 2-feature models; this one has ${page.model.features.length}`
      : 'start serve with --model FILE (a 2-feature model) for the score contour';
    el('text', { x: 300, y: 210, 'text-anchor': 'middle' }, svg, 'no contour');
    return;
  }
  $('contour-note').textContent = '';
  const box = svg.viewBox.baseVal;
  const m = { left: 48, right: 12, top: 10, bottom: 40 };
  const w = box.width - m.left - m.right;
  const h = box.height - m.top - m.bottom;
  const [x0, x1] = shape.x;
  const [y0, y1] = shape.y;
  const x = (v) => m.left + ((v - x0) / (x1 - x0)) * w;
  const y = (v) => m.top + h - ((v - y0) / (y1 - y0)) * h;
  const dx = (x1 - x0) / (shape.grid - 1);
  const dy = (y1 - y0) / (shape.grid - 1);
  for (const [row, from, to, band] of shape.runs) {
    const left = Math.max(x0, x0 + (from - 0.5) * dx);
    const right = Math.min(x1, x0 + (to + 0.5) * dx);
    const bottom = Math.max(y0, y0 + (row - 0.5) * dy);
    const upper = Math.min(y1, y0 + (row + 0.5) * dy);
    el('rect', { x: x(left), y: y(upper), width: x(right) - x(left) + 0.6, height: y(bottom) - y(upper) + 0.6, fill: blend((band + 0.5) / shape.bands) }, svg);
  }
  const line = shape.threshold.map((s) => `M${x(s[0]).toFixed(1)},${y(s[1]).toFixed(1)}L${x(s[2]).toFixed(1)},${y(s[3]).toFixed(1)}`).join('');
  el('path', { d: line, stroke: COLOURS.threshold, 'stroke-width': 2, fill: 'none' }, svg);
  for (const [px, py, above] of page.points) {
    if (px < x0 || px > x1 || py < y0 || py > y1) continue;
    el('circle', { cx: x(px), cy: y(py), r: above ? 3.5 : 2.2, fill: above ? COLOURS.anomaly : COLOURS.input, 'fill-opacity': above ? 0.95 : 0.7, class: 'point' }, svg);
  }
  el('rect', { x: m.left, y: m.top, width: w, height: h, fill: 'none', class: 'axis' }, svg);
  for (const v of within(x0, x1, 6)) {
    el('text', { x: x(v), y: m.top + h + 15, 'text-anchor': 'middle' }, svg, label(v));
  }
  for (const v of within(y0, y1, 5)) {
    el('text', { x: m.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, svg, label(v));
  }
  const names = drawing.features;
  el('text', { x: m.left + w / 2, y: m.top + h + 33, 'text-anchor': 'middle', class: 'title' }, svg, names[0]);
  el('text', { x: 12, y: m.top + h / 2, 'text-anchor': 'middle', class: 'title', transform: `rotate(-90 12 ${m.top + h / 2})` }, svg, names[1]);
  $('contour-hint').textContent = `pale: low score, orange: high; red line: threshold ${drawing.threshold.toFixed(4)}; latest ${page.points.length} points`;
}

function bar(parent, share, red) {
  const svg = el('svg', { viewBox: '0 0 100 8', width: 110, height: 8, class: 'barsvg' }, parent);
  el('rect', { x: 0, y: 0, width: 100, height: 8, rx: 4, fill: '#e9eef5' }, svg);
  el('rect', { x: 0, y: 0, width: Math.max(0, Math.min(1, share)) * 100, height: 8, rx: 4, fill: red ? COLOURS.anomaly : COLOURS.input }, svg);
}

function group(page) {
  const body = $('group').tBodies[0];
  clear(body);
  const stats = page.stats.group;
  $('group-id').textContent = `${stats.id}${page.group.state ? ' · ' + page.group.state : ''}`;
  const notes = [];
  if (page.group.note) notes.push(page.group.note);
  if (!stats.lag) notes.push('lag unknown: the committed offsets could not be read');
  $('group-note').textContent = notes.join('; ');
  const lags = stats.lag || [];
  const most = Math.max(1, ...lags.map((l) => l.lag));
  for (const l of lags) {
    const row = html('tr', body);
    html('td', row, String(l.partition));
    html('td', row, page.group.owners[l.partition] || '–', 'mono');
    html('td', row, l.committed === null ? 'none' : count(l.committed), 'num');
    html('td', row, count(l.high), 'num');
    html('td', row, count(l.lag), 'num');
    bar(html('td', row), l.lag / most, l.lag > 1000);
  }
}

function anomalies(page) {
  const body = $('anomalies').tBodies[0];
  clear(body);
  const rows = page.latest.slice(0, 15);
  $('anomalies-note').textContent = rows.length ? '' : 'none yet';
  const newest = rows.length ? rows[0].at_ms : null;
  for (const a of rows) {
    const row = html('tr', body);
    if (newest !== null && a.at_ms !== null && newest - a.at_ms < 1500) row.className = 'fresh anomaly-row';
    else row.className = 'anomaly-row';
    html('td', row, clock(a.at_ms), 'mono');
    html('td', row, a.id, 'mono');
    html('td', row, fixed(a.score, 4), 'num');
    const reason = html('td', row);
    if (a.reason) {
      html('span', reason, `${a.reason.feature} ${a.reason.direction || ''}`.trim(), 'reason');
      const parts = [];
      if (a.reason.value !== null && a.reason.value !== undefined) parts.push(`= ${label(a.reason.value)}`);
      if (a.reason.share !== null && a.reason.share !== undefined) parts.push(`${Math.round(a.reason.share * 100)} %`);
      if (parts.length) html('span', reason, ' ' + parts.join(', '));
    } else {
      reason.textContent = '—';
    }
    const features = a.features.slice(0, 4).map(([name, v]) => `${name} ${label(v)}`).join(' · ');
    html('td', row, features + (a.features.length > 4 ? ' …' : ''), 'mono');
    html('td', row, a.source, 'mono');
    html('td', row, a.model.slice(0, 10), 'mono');
  }
}

function deadLetters(page) {
  const body = $('dead-letters').tBodies[0];
  clear(body);
  const entries = Object.entries(page.dead_letters).sort((a, b) => b[1] - a[1]);
  const most = Math.max(1, ...entries.map((e) => e[1]));
  for (const [reason, n] of entries) {
    const row = html('tr', body);
    html('td', row, reason, 'mono');
    html('td', row, count(n), 'num');
    bar(html('td', row), n / most, true);
  }
  $('dead-letters-note').textContent = entries.length ? '' : `none read (${count(page.stats.dead_letters)} in the topic)`;
}

function model(page) {
  const facts = $('model');
  clear(facts);
  const m = page.model;
  const add = (name, value) => { html('dt', facts, name); html('dd', facts, value); };
  add('in use', m.in_use ? m.in_use : 'no anomaly has named one yet');
  if (page.stats.model) add('in use for', age(page.stats.model.in_use_s));
  add('last changed', m.models_seen > 1 ? `${clock(m.in_use_since_ms)} (${m.models_seen} models seen)` : m.in_use ? 'not since reading began' : '–');
  add('features', m.features.length ? m.features.join(', ') : '–');
  if (m.file) {
    add('file', m.file.path);
    add('file model', `${m.file.id}${m.in_use && m.in_use !== m.file.id ? ' (not the one in use)' : ''}`);
    add('trees · threshold', `${m.file.n_trees} · ${m.file.threshold.toFixed(4)}`);
    add('file modified', m.file.modified_ms ? new Date(m.file.modified_ms).toLocaleString('en-GB') : '–');
    if (m.file.error) add('reread failed', m.file.error);
  }
}

function tiles(page) {
  const s = page.stats;
  const role = (name) => Object.values(s.topics).find((t) => t.role === name) || { per_second: null, records: 0 };
  const input = role('input');
  const output = role('anomalies');
  $('t-input').textContent = fixed(input.per_second, 1);
  $('t-input-sub').textContent = `${count(input.records)} read`;
  $('t-anomalies').textContent = fixed(output.per_second, 1);
  $('t-anomalies-sub').textContent = `${count(output.records)} read`;
  $('t-share').textContent = percent(page.history.share_last_minute, 2);
  $('t-share-sub').textContent = `last minute · ${percent(s.anomaly_share, 2)} overall`;
  const l = s.latency_ms;
  $('t-latency').textContent = `${fixed(l.p50, 0)} · ${fixed(l.p95, 0)} · ${fixed(l.p99, 0)}`;
  $('t-latency-sub').textContent = `ms, ${count(l.count)} matched`;
  $('t-lag').textContent = count(s.group.total_lag);
  $('t-lag-sub').textContent = `${(s.group.lag || []).length} partitions`;
  $('t-dlq').textContent = count(s.dead_letters);
  const labels = s.labels;
  $('t-dlq-sub').textContent = labels ? `precision ${fixed(labels.precision, 3)} · recall ${fixed(labels.recall, 3)}` : 'in the topic';
  $('at').textContent = s.at ? new Date(s.at).toLocaleString('en-GB') : '';
}

let lastMessage = 0;

function show(page) {
  lastMessage = Date.now();
  const status = $('status');
  status.textContent = 'live';
  status.className = 'status live';
  for (const draw of [tiles, rates, latency, group, histogram, contour, anomalies, deadLetters, model]) {
    draw(page);
  }
}

function connect() {
  const source = new EventSource('/events');
  source.onmessage = (event) => show(JSON.parse(event.data));
  source.onerror = () => {
    const status = $('status');
    status.textContent = 'reconnecting';
    status.className = 'status down';
  };
}

setInterval(() => {
  if (lastMessage && Date.now() - lastMessage > 5000) {
    const status = $('status');
    status.textContent = 'no update for ' + Math.round((Date.now() - lastMessage) / 1000) + ' s';
    status.className = 'status stale';
  }
}, 1000);

connect();
