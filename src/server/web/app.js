// The winnow web page: reads the daemon's JSON routes every few seconds and draws them. No build step.
// uPlot comes from /web/uPlot.iife.min.js (a global). Text from the server goes in with textContent only.
/* global uPlot */

const REFRESH_MS = 5000;
const MINUTES = 60;

/** What the page shows now; the browser test reads the charts' data from here. */
const state = { pipeline: null, charts: {}, refreshes: 0, error: null };
window.winnow = state;

const $ = (sel) => document.querySelector(sel);

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  // /readyz answers 503 with its body when a pipeline is failing: that is an answer, not an error.
  if (!res.ok && !(url === '/readyz' && body)) {
    const message = body && body.error ? body.error.message : `${res.status} ${res.statusText}`;
    throw new Error(`${url}: ${message}`);
  }
  return body;
}

const enc = encodeURIComponent;
const num = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en'));
const ms = (n) => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`);
const time = (s) =>
  s
    ? String(s)
        .replace('T', ' ')
        .replace(/\.\d+Z?$|Z$/, '')
    : '—';

/** A table row of cells: strings, or [text, className]. */
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    const [text, cls] = Array.isArray(c) ? c : [c, ''];
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
  }
  return tr;
}

function fill(tableSel, rows, empty) {
  const body = $(`${tableSel} tbody`);
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const cols = $(`${tableSel} thead tr`).children.length;
    const tr = row([[empty, 'muted']]);
    tr.firstChild.colSpan = cols;
    body.append(tr);
  }
}

function renderPipelines(list, readiness) {
  const health = readiness.pipelines || {};
  const rows = list.map((p) => {
    const h = health[p.name];
    const tr = row([
      p.name,
      [h ? h.state : 'unknown', `state ${h ? h.state : ''}`],
      h ? time(h.since) : '—',
      h && h.holder ? h.holder : '—',
      `${p.topics.join(', ')} → ${p.database}.${p.table}`,
      [h && h.error ? `${h.error.class}: ${h.error.message}` : '', 'error'],
    ]);
    tr.dataset.pipeline = p.name;
    tr.dataset.state = h ? h.state : 'unknown';
    if (p.name === state.pipeline) tr.classList.add('selected');
    tr.addEventListener('click', () => select(p.name));
    return tr;
  });
  fill('#pipelines', rows, 'no pipelines in the configuration');
  const badge = $('#ready');
  badge.textContent = readiness.ready ? 'ready' : 'not ready';
  badge.className = `badge ${readiness.ready ? 'ok' : 'bad'}`;
}

function tile(label, value, title) {
  const div = document.createElement('div');
  div.className = 'tile';
  const v = document.createElement('strong');
  v.textContent = value;
  const l = document.createElement('span');
  l.textContent = label;
  div.append(v, l);
  if (title) div.title = title;
  return div;
}

function renderStats(s) {
  $('#tiles').replaceChildren(
    tile('events/s (1 min)', s.eventsPerSecond.last1m.toFixed(1)),
    tile('inserted', num(s.inserted)),
    tile('duplicates dropped', num(s.duplicatesDropped), `${(s.duplicateRatio * 100).toFixed(1)} % of processed`),
    tile('duplicate ratio', `${(s.duplicateRatio * 100).toFixed(1)} %`),
    tile('dead letters', num(s.deadLetters), `${num(s.refusedByFinal)} refused by the final table`),
    tile('rows waiting', num(s.pendingRows)),
    tile('last slice', s.lastSlice ? `#${s.lastSlice.seq} · ${ms(s.lastSlice.durationMs)}` : '—'),
  );
  fill(
    '#partitions',
    s.partitions.map((p) =>
      row([
        `${p.topic}/${p.partition}`,
        num(p.nextOffset),
        num(p.stagedHigh),
        num(p.logEnd),
        [num(p.lag), p.lag > 0 ? 'warn' : ''],
      ]),
    ),
    'no partitions yet',
  );
}

const SERIES = {
  throughput: [
    { label: 'arrived', key: 'arrived', stroke: '#2f6fdf', fill: 'rgba(47,111,223,0.08)' },
    { label: 'inserted', key: 'inserted', stroke: '#1a9a5a' },
  ],
  duplicates: [
    { label: 'duplicates', key: 'duplicates', stroke: '#d08a0a', fill: 'rgba(208,138,10,0.1)' },
    { label: 'dead letters', key: 'deadLetters', stroke: '#c0392b' },
  ],
  waiting: [{ label: 'waiting', key: 'waiting', stroke: '#7a4fbf', fill: 'rgba(122,79,191,0.1)' }],
};

function chartData(name, buckets) {
  return [buckets.map((b) => b.minute / 1000), ...SERIES[name].map((s) => buckets.map((b) => b[s.key]))];
}

function renderCharts(history) {
  for (const name of Object.keys(SERIES)) {
    const el = $(`[data-chart="${name}"]`);
    const data = chartData(name, history.buckets);
    let chart = state.charts[name];
    if (!chart) {
      const opts = {
        width: Math.max(280, el.clientWidth),
        height: 180,
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (_u, min, max) => [0, Math.max(1, max)] } },
        series: [{}, ...SERIES[name].map((s) => ({ label: s.label, stroke: s.stroke, fill: s.fill, width: 2 }))],
        axes: [{}, { size: 60 }],
      };
      chart = new uPlot(opts, data, el);
      state.charts[name] = chart;
    } else {
      chart.setData(data);
    }
    // What the chart holds, for a reader without the canvas (and the browser test).
    el.dataset.points = String(data[0].length);
    for (const [i, s] of SERIES[name].entries())
      el.dataset[`sum${s.label.replace(/\W/g, '')}`] = String(sum(data[i + 1]));
  }
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

function renderSlices(slices) {
  fill(
    '#slices',
    slices.map((s) => {
      const tr = row([
        String(s.seq),
        [s.status, `status ${s.status}`],
        time(s.committedAt),
        num(s.rowsIn),
        num(s.inserted),
        num(s.duplicates),
        [num(s.rejected), s.rejected > 0 ? 'warn' : ''],
        ms(s.durationMs),
        s.ranges.map((r) => `${r.topic}/${r.partition}:${r.fromOffset}-${r.toOffset}`).join(' '),
      ]);
      tr.dataset.seq = String(s.seq);
      return tr;
    }),
    'no slices yet',
  );
}

function renderDeadLetters(d) {
  $('#dead-total').textContent = `(${num(d.total)})`;
  fill(
    '#dead-reasons',
    d.reasons.map((r) => row([[r.error, 'error'], num(r.count), time(r.last)])),
    'none',
  );
  fill(
    '#dead-recent',
    d.recent.map((l) => row([`${l.topic}/${l.partition}@${l.offset}`, time(l.ingestedAt), [l.error, 'error']])),
    'none',
  );
}

function renderChecks(checks) {
  fill(
    '#checks',
    checks.map((c) =>
      row([
        time(c.checkedAt),
        c.ok ? ['consistent', 'ok'] : [`failed: ${c.failed.join(', ') || 'see winnow check'}`, 'bad'],
        c.mode,
        num(c.slices),
        num(c.repaired),
        ms(c.durationMs),
      ]),
    ),
    'no check has run yet',
  );
}

function renderReplays(jobs) {
  fill(
    '#replays',
    jobs.map((j) =>
      row([
        j.jobId,
        j.kind,
        [j.state, `state ${j.state}`],
        `${j.progress.percent} % (${num(j.progress.inserted)} inserted)`,
        time(j.requestedAt),
        [j.error || '', 'error'],
      ]),
    ),
    'no replays',
  );
}

function select(name) {
  if (state.pipeline !== name) {
    state.pipeline = name;
    for (const c of Object.values(state.charts)) c.destroy();
    state.charts = {};
    history.replaceState(null, '', `#${enc(name)}`);
  }
  void refresh();
}

let running = false;
async function refresh() {
  if (running) return;
  running = true;
  try {
    const [list, readiness] = await Promise.all([getJson('/api/v1/pipelines'), getJson('/readyz')]);
    const names = list.pipelines.map((p) => p.name);
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (!names.includes(state.pipeline)) state.pipeline = names.includes(wanted) ? wanted : (names[0] ?? null);
    renderPipelines(list.pipelines, readiness);
    $('#detail').hidden = state.pipeline === null;
    if (state.pipeline !== null) {
      const base = `/api/v1/pipelines/${enc(state.pipeline)}`;
      const [stats, hist, slices, dead, checks, replays] = await Promise.all([
        getJson(`${base}/stats`),
        getJson(`${base}/history?minutes=${MINUTES}`),
        getJson(`${base}/slices?limit=15`),
        getJson(`${base}/deadletters?limit=10`),
        getJson(`${base}/checks?limit=8`),
        getJson(`${base}/replays?limit=8`),
      ]);
      $('#detail-title').textContent = state.pipeline;
      renderStats(stats);
      renderCharts(hist);
      renderSlices(slices.slices);
      renderDeadLetters(dead);
      renderChecks(checks.checks);
      renderReplays(replays.jobs);
    }
    state.error = null;
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    $('#updated').textContent = `updated ${new Date().toLocaleTimeString('en-GB')}`;
    $('#problem').hidden = true;
  } catch (err) {
    state.error = String(err.message || err);
    $('#problem').textContent = state.error;
    $('#problem').hidden = false;
  } finally {
    running = false;
  }
}

window.addEventListener('resize', () => {
  for (const [name, c] of Object.entries(state.charts)) {
    c.setSize({ width: Math.max(280, $(`[data-chart="${name}"]`).clientWidth), height: 180 });
  }
});

void refresh();
setInterval(() => void refresh(), REFRESH_MS);
