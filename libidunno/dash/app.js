// SPDX-License-Identifier: MIT
// app.js: draws the dashboard from /api/state once a second.
'use strict';
const COLORS = ['#1565c0', '#c62828', '#2e7d32', '#6a1b9a', '#ef6c00',
  '#00838f', '#5d4037', '#ad1457'];
const WINDOW_MS = 5 * 60 * 1000;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function num(v, d) { return v === null || v === undefined ? '-' : Number(v).toFixed(d); }
function time(ms) { return new Date(ms).toLocaleTimeString(); }

function jobRow(j) {
  const p = j.processing_ms, l = j.latency_ms;
  const cells = [
    [j.job, 'l'], [j.phase, 'l'], [j.state, 'l'], [j.model, 'l'], [j.batch],
    [j.done + ' / ' + j.total], [num(j.rate_10s, 1)], [num(j.rate, 1)],
    [j.accuracy === null ? '-' : num(100 * j.accuracy, 2) + ' %'],
    [num(p.mean, 2) + ' ± ' + num(p.stddev, 2)], [num(p.median, 2)],
    [num(p.p90, 2)], [num(p.p95, 2)], [num(p.p99, 2)],
    [num(l.mean, 1) + ' ± ' + num(l.stddev, 1)], [num(l.median, 1)],
    [num(l.p90, 1)], [num(l.p95, 1)], [num(l.p99, 1)],
    [j.workers.length + ': ' + j.workers.map(w => w.split(':')[1]).join(' '), 'l'],
  ];
  const tr = el('tr');
  tr.dataset.job = j.job;
  for (const [t, c] of cells) tr.appendChild(el('td', String(t), c));
  return tr;
}

function chart(canvas, history, col, now) {
  const g = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, L = 50, B = 20;
  g.clearRect(0, 0, W, H);
  let max = 0, oldest = now;
  const jobs = Object.keys(history);
  for (const k of jobs) for (const p of history[k]) {
    if (p[col] > max) max = p[col];
    if (p[0] < oldest) oldest = p[0];
  }
  // The time axis spans the data: one minute at least, five at most.
  const span = Math.min(WINDOW_MS, Math.max(60000, now - oldest));
  max = max > 0 ? max * 1.1 : 1;
  g.strokeStyle = '#ccc'; g.fillStyle = '#666'; g.font = '11px sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = 6 + (H - B - 6) * (1 - i / 4);
    g.beginPath(); g.moveTo(L, y); g.lineTo(W, y); g.stroke();
    g.fillText((max * i / 4).toFixed(max < 10 ? 1 : 0), 2, y + 4);
  }
  const step = span > 120000 ? 60000 : 15000;
  for (let t = 0; t <= span; t += step) {
    const x = L + (W - L) * (1 - t / span);
    g.fillText(t === 0 ? 'now' : '-' + (t / 1000) + ' s', Math.min(x, W - 30) - 10, H - 4);
  }
  jobs.forEach((k, i) => {
    g.strokeStyle = COLORS[i % COLORS.length]; g.lineWidth = 2;
    g.beginPath();
    let first = true;
    for (const p of history[k]) {
      if (p[col] === null || now - p[0] > span) continue;
      const x = L + (W - L) * (1 - (now - p[0]) / span);
      const y = 6 + (H - B - 6) * (1 - p[col] / max);
      if (first) g.moveTo(x, y); else g.lineTo(x, y);
      first = false;
    }
    g.stroke();
  });
  canvas.dataset.points = jobs.reduce((n, k) => n + history[k].length, 0);
}

function draw(s) {
  const st = s.stats;
  document.getElementById('status').textContent = 'node ' + s.node + ' (' + s.role +
    (st ? ', epoch ' + s.epoch + ', phase ' + st.phase : ', no coordinator here') +
    '), updated ' + time(s.now);
  document.getElementById('fairness').textContent = st && st.fairness !== null ?
    '— fairness ' + num(st.fairness, 3) + ' (max/min rate of backlogged jobs)' : '';
  const tb = document.querySelector('#jobs tbody');
  tb.replaceChildren(...(st ? st.jobs.map(jobRow) : []));
  const history = {};
  for (const k of Object.keys(s.history)) history[k] = s.history[k];
  chart(document.getElementById('rate'), history, 1, s.now);
  chart(document.getElementById('p95'), history, 2, s.now);
  const key = document.getElementById('key');
  key.replaceChildren();
  Object.keys(history).forEach((k, i) => {
    const sw = el('span'); sw.style.background = COLORS[i % COLORS.length];
    key.appendChild(sw); key.appendChild(document.createTextNode(k));
  });
  const nb = document.querySelector('#nodes tbody');
  nb.replaceChildren(...s.members.map(m => {
    const tr = el('tr', undefined, m.state);
    tr.dataset.node = m.id;
    tr.dataset.state = m.state;
    tr.appendChild(el('td', m.id, 'l'));
    tr.appendChild(el('td', m.role, 'l'));
    tr.appendChild(el('td', m.state, 'l'));
    tr.appendChild(el('td', s.leases && m.id in s.leases ? String(s.leases[m.id]) : '-'));
    tr.appendChild(el('td', time(m.since_ms), 'l'));
    return tr;
  }));
  const ev = document.getElementById('events');
  ev.replaceChildren(...s.events.map(e => el('div', time(e.t_ms) + '  ' + e.text)));
}

async function tick() {
  try {
    const r = await fetch('api/state', {cache: 'no-store'});
    draw(await r.json());
  } catch (e) {
    document.getElementById('status').textContent = 'cannot reach the node: ' + e;
  }
  setTimeout(tick, 1000);
}
tick();
