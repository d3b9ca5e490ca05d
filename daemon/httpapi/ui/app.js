// Corral web UI: plain JavaScript, no build step. Every view keeps itself
// current with Consul-style blocking queries (?index=N&wait=30s) or
// streamed logs; nothing polls on a timer. When the API answers 401 the UI
// asks for an ACL token, keeps it in sessionStorage and sends it as
// X-Corral-Token.
'use strict';

const STATES = ['blocked', 'scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];
const TOKEN_KEY = 'corral-token';
const PAGE = 50;

// ---- DOM helpers (text only: job data never becomes HTML) ----
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'style') e.setAttribute('style', v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const $ = (s, root = document) => root.querySelector(s);
// fill replaces node's children, skipping empty ones as el does.
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter(c => c !== undefined && c !== null && c !== false && c !== ''));
}
const badge = (s, extra) => el('span', { class: 'badge ' + (extra || s) }, s);
const fmtNum = n => (n ?? 0).toLocaleString();
function ago(t) {
  if (!t || t.startsWith('0001')) return '';
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  if (s < 0) return 'in ' + dur(-s);
  return dur(s) + ' ago';
}
function dur(s) {
  if (s < 1) return Math.round(s * 1000) + 'ms';
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.floor(s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}
const short = id => id ? id.slice(-10) : '';
const pretty = raw => {
  if (raw === undefined || raw === null || raw === '') return '';
  try { return JSON.stringify(typeof raw === 'string' ? JSON.parse(raw) : raw, null, 2); } catch { return String(raw); }
};

// ---- API ----
class AuthError extends Error {}
async function api(method, path, body, signal) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers['X-Corral-Token'] = token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (r.status === 401) { setLive(false); askToken(r.status); throw new AuthError('this API needs an ACL token'); }
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const msg = (data && data.error) || `${r.status} ${r.statusText}`;
    const err = new Error(r.status === 403 ? 'permission denied: ' + msg : msg);
    err.status = r.status;
    throw err;
  }
  return { data, index: Number(r.headers.get('X-Corral-Index') || 0) };
}
const sleep = (ms, signal) => new Promise(res => {
  const t = setTimeout(res, ms);
  signal && signal.addEventListener('abort', () => { clearTimeout(t); res(); }, { once: true });
});

// watch keeps calling path as a blocking query and hands each answer to
// onData until signal aborts.
async function watch(path, signal, onData) {
  let index = 0;
  while (!signal.aborted) {
    const started = Date.now();
    try {
      const sep = path.includes('?') ? '&' : '?';
      const r = await api('GET', index ? `${path}${sep}index=${index}&wait=30s` : path, undefined, signal);
      setLive(true);
      const prev = index;
      index = r.index || index;
      await onData(r.data, r.index);
      // An endpoint that does not block must not become a busy loop.
      if (index <= prev && Date.now() - started < 1000) await sleep(1000, signal);
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof AuthError) return; // the view restarts after sign-in
      setLive(false);
      flash(e.message);
      await sleep(2000, signal);
    }
  }
}

// ---- chrome ----
let current = null; // { ctl: AbortController }
function setLive(on) { $('#live').classList.toggle('off', !on); $('#live').textContent = on ? 'live' : 'reconnecting'; }
function flash(msg, ok) {
  const f = $('#flash');
  f.hidden = !msg;
  f.textContent = msg || '';
  f.classList.toggle('ok', !!ok);
  if (ok) setTimeout(() => { if (f.textContent === msg) f.hidden = true; }, 3000);
}
function askToken(status) {
  const d = $('#login');
  if (!d.open) {
    $('#login-why').textContent = sessionStorage.getItem(TOKEN_KEY)
      ? 'The token was refused. Paste a valid ACL token secret.'
      : 'This agent has ACLs enabled. Paste an ACL token (its secret) to continue.';
    d.showModal();
  }
}
$('#login-form').addEventListener('submit', () => {
  sessionStorage.setItem(TOKEN_KEY, $('#login-token').value.trim());
  $('#login-token').value = '';
  updateTokenButton();
  route();
});
function updateTokenButton() {
  const b = $('#token-btn');
  const has = !!sessionStorage.getItem(TOKEN_KEY);
  b.textContent = has ? 'Sign out (forget token)' : 'Use an ACL token';
  b.onclick = () => {
    if (has) { sessionStorage.removeItem(TOKEN_KEY); updateTokenButton(); route(); } else askToken();
  };
}

// ---- routing ----
const views = { overview, jobs, failed: p => jobs(p, 'failed'), job, queues, cluster, plugins };
function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, qs] = h.split('?');
  const parts = path.split('/').filter(Boolean);
  return { parts, params: new URLSearchParams(qs || '') };
}
function route() {
  if (current) current.ctl.abort();
  const ctl = new AbortController();
  current = { ctl };
  flash('');
  const { parts, params } = parseHash();
  let name = parts[0] || 'overview';
  if (name === 'jobs' && parts[1]) name = 'job';
  if (!views[name]) name = 'overview';
  document.querySelectorAll('#nav a').forEach(a => a.classList.toggle('active', a.dataset.view === (name === 'job' ? 'jobs' : name)));
  const view = $('#view');
  fill(view);
  views[name]({ view, params, id: parts[1], signal: ctl.signal, setTitle: t => { $('#title').textContent = t; document.title = t + ' · Corral'; } });
}
window.addEventListener('hashchange', route);
function go(hash) { if (location.hash === hash) route(); else location.hash = hash; }

// ---- overview ----
function overview({ view, signal, setTitle }) {
  setTitle('Overview');
  const cards = el('div', { class: 'cards' });
  const queuesBody = el('tbody');
  const health = el('div', { class: 'body' });
  view.append(cards,
    el('div', { class: 'grid2' },
      el('div', { class: 'panel' }, el('h2', {}, 'Queues', el('a', { href: '#/queues', class: 'small' }, 'Manage')),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Queue'), el('th', {}, 'Jobs by state'),
          ...['queued', 'running', 'failed'].map(s => el('th', { class: 'num' }, s)))), queuesBody),
        el('div', { class: 'body legend' }, STATES.map(s => el('span', {}, el('i', { style: `background:var(--${s})` }), s)))),
      el('div', { class: 'panel' }, el('h2', {}, 'Cluster health', el('a', { href: '#/cluster', class: 'small' }, 'Details')), health)));
  const samples = [];
  watch('/v1/queues', signal, async data => {
    const qs = data.queues || [];
    const tot = Object.fromEntries(STATES.map(s => [s, 0]));
    for (const q of qs) for (const s of STATES) tot[s] += q.counts[s] || 0;
    const now = Date.now(), done = tot.succeeded + tot.failed + tot.cancelled;
    samples.push([now, done]);
    while (samples.length > 2 && now - samples[0][0] > 60000) samples.shift();
    let rate = 0;
    if (samples.length > 1) {
      const [t0, d0] = samples[0];
      rate = Math.max(0, done - d0) / Math.max((now - t0) / 60000, 1 / 60);
    }
    fill(cards, 
      ...[['Queued', tot.queued, 'waiting for a slot'], ['Running', tot.running, 'on the cluster now'],
        ['Scheduled', tot.scheduled, 'delayed or retrying'], ['Failed', tot.failed, 'in the dead set'],
        ['Succeeded', tot.succeeded, 'kept until retention']].map(([k, v, s]) =>
        el('div', { class: 'card', 'data-card': k.toLowerCase() }, el('div', { class: 'k' }, k), el('div', { class: 'v' }, fmtNum(v)), el('div', { class: 's' }, s))),
      el('div', { class: 'card' }, el('div', { class: 'k' }, 'Throughput'), el('div', { class: 'v' }, samples.length > 1 ? Math.round(rate).toLocaleString() : '–'), el('div', { class: 's' }, 'jobs finished / min')));
    fill(queuesBody, ...(qs.length ? qs.map(q => {
      const total = STATES.reduce((a, s) => a + (q.counts[s] || 0), 0);
      return el('tr', {},
        el('td', {}, el('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.name), ' ', q.paused && badge('paused')),
        el('td', {}, el('div', { class: 'bar', title: STATES.map(s => `${s} ${q.counts[s] || 0}`).join(', ') },
          STATES.map(s => total && q.counts[s] ? el('span', { style: `width:${100 * q.counts[s] / total}%;background:var(--${s})` }) : null))),
        ...['queued', 'running', 'failed'].map(s => el('td', { class: 'num' }, fmtNum(q.counts[s]))));
    }) : [el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'No queues yet: submit a job to create one.'))]));
    await refreshHealth(health, signal);
  });
}

async function refreshHealth(box, signal) {
  try {
    const [self, leader, members, raft] = await Promise.all([
      api('GET', '/v1/agent/self', undefined, signal), api('GET', '/v1/status/leader', undefined, signal),
      api('GET', '/v1/members', undefined, signal), api('GET', '/v1/operator/raft/configuration', undefined, signal)]);
    const ms = members.data || [];
    const alive = ms.filter(m => m.status === 'alive').length;
    const servers = raft.data.servers || [];
    const voters = servers.filter(s => s.voter).length;
    const quorum = Math.floor(voters / 2) + 1;
    const ok = leader.data.id && alive === ms.length;
    fill(box, el('dl', { class: 'kv' },
      el('dt', {}, 'Status'), el('dd', {}, ok ? badge('healthy', 'alive') : badge(leader.data.id ? 'degraded' : 'no leader', 'failed')),
      el('dt', {}, 'Leader'), el('dd', {}, leader.data.node || el('span', { class: 'err' }, 'none')),
      el('dt', {}, 'Members'), el('dd', {}, `${alive} alive of ${ms.length}`),
      el('dt', {}, 'Raft voters'), el('dd', {}, `${voters} (quorum ${quorum}), ${servers.length - voters} non-voters`),
      el('dt', {}, 'This node'), el('dd', {}, `${self.data.node} · ${self.data.state} · applied ${fmtNum(self.data.applied_index)}`)));
    $('#node-info').textContent = `${self.data.node} · ${self.data.state} · v${self.data.version}`;
  } catch (e) { if (!signal.aborted && !(e instanceof AuthError)) fill(box, el('div', { class: 'err' }, e.message)); }
}

// ---- jobs list (and the failed set) ----
function jobs({ view, params, signal, setTitle }, fixedState) {
  setTitle(fixedState ? 'Failed jobs' : 'Jobs');
  const state = fixedState || params.get('state') || '';
  const q = params.get('queue') || '', plugin = params.get('plugin') || '', search = params.get('search') || '';
  const page = Math.max(0, Number(params.get('page') || 0));
  const base = fixedState ? '#/failed' : '#/jobs';
  const nav = changes => {
    const p = new URLSearchParams({ queue: q, state: fixedState ? '' : state, plugin, search, page: 0, ...changes });
    for (const [k, v] of [...p]) if (!v || v === '0') p.delete(k);
    go(base + (p.toString() ? '?' + p : ''));
  };
  const queueSel = el('select', { name: 'queue', onchange: e => nav({ queue: e.target.value }) }, el('option', { value: '' }, 'All queues'));
  const stateSel = el('select', { name: 'state', onchange: e => nav({ state: e.target.value }), disabled: !!fixedState },
    el('option', { value: '' }, 'All states'), STATES.map(s => el('option', { value: s, selected: s === state }, s)));
  const pluginSel = el('select', { name: 'plugin', onchange: e => nav({ plugin: e.target.value }) }, el('option', { value: '' }, 'All plugins'));
  const searchBox = el('input', { type: 'search', name: 'search', placeholder: 'Job ID (or prefix) or unique key', value: search });
  const form = el('form', { class: 'filters', onsubmit: e => { e.preventDefault(); nav({ search: searchBox.value.trim() }); } },
    queueSel, stateSel, pluginSel, searchBox, el('button', { type: 'submit' }, 'Search'),
    (q || plugin || search || (state && !fixedState)) && el('button', { type: 'button', class: 'link', onclick: () => go(base) }, 'Clear filters'));
  const selected = new Set();
  const bulkInfo = el('span', { class: 'muted' });
  const retryBtn = el('button', { class: 'primary', 'data-action': 'retry-selected', onclick: () => bulk('retry') }, 'Retry selected');
  const cancelBtn = el('button', { class: 'danger', 'data-action': 'cancel-selected', onclick: () => bulk('cancel') }, 'Cancel selected');
  const bulkBar = el('div', { class: 'bulk' }, bulkInfo, retryBtn, cancelBtn);
  const tbody = el('tbody');
  const pager = el('div', { class: 'pager' });
  const all = el('input', { type: 'checkbox', title: 'Select the page', onchange: e => {
    tbody.querySelectorAll('input[type=checkbox]').forEach(c => { c.checked = e.target.checked; c.dispatchEvent(new Event('change')); });
  } });
  view.append(form, el('div', { class: 'panel' }, bulkBar,
    el('table', { id: 'jobs-table' }, el('thead', {}, el('tr', {}, el('th', {}, all), el('th', {}, 'Job'), el('th', {}, 'Queue'), el('th', {}, 'Plugin'),
      el('th', {}, 'State'), el('th', { class: 'num' }, 'Attempt'), el('th', {}, 'Created'), el('th', {}, fixedState ? 'Error' : 'Updated'))), tbody), pager));
  let rows = [];
  const updateBulk = () => {
    const sel = rows.filter(j => selected.has(j.id));
    bulkInfo.textContent = sel.length ? `${sel.length} selected` : (fixedState ? 'Select failed jobs to retry or cancel them' : 'Select jobs to act on them');
    retryBtn.disabled = !sel.some(j => j.state === 'failed' || j.state === 'cancelled');
    cancelBtn.disabled = !sel.some(j => !['succeeded', 'failed', 'cancelled'].includes(j.state));
  };
  async function bulk(action) {
    const sel = rows.filter(j => selected.has(j.id) && (action === 'retry'
      ? (j.state === 'failed' || j.state === 'cancelled') : !['succeeded', 'failed', 'cancelled'].includes(j.state)));
    let ok = 0; const errs = [];
    for (const j of sel) {
      try { await api(action === 'retry' ? 'POST' : 'DELETE', action === 'retry' ? `/v1/jobs/${j.id}/retry` : `/v1/jobs/${j.id}`); ok++; } catch (e) { errs.push(e.message); }
    }
    selected.clear();
    flash(errs.length ? `${ok} ${action === 'retry' ? 'retried' : 'cancelled'}; ${errs.length} failed: ${errs[0]}` : `${ok} job${ok === 1 ? '' : 's'} ${action === 'retry' ? 'retried' : 'cancelled'}`, !errs.length);
  }
  // Filter choices come from the queues and this node's plugins.
  api('GET', '/v1/queues', undefined, signal).then(r => {
    for (const qq of r.data.queues || []) queueSel.append(el('option', { value: qq.name, selected: qq.name === q }, qq.name));
  }).catch(() => {});
  api('GET', '/v1/members', undefined, signal).then(r => {
    const names = new Set();
    for (const m of r.data || []) for (const p of (m.tags.plugins || '').split(',').filter(Boolean)) names.add(p);
    if (plugin) names.add(plugin);
    for (const p of [...names].sort()) pluginSel.append(el('option', { value: p, selected: p === plugin }, p));
  }).catch(() => {});
  const qs = new URLSearchParams({ limit: PAGE, offset: page * PAGE });
  if (q) qs.set('queue', q); if (state) qs.set('state', state); if (plugin) qs.set('plugin', plugin); if (search) qs.set('search', search);
  watch('/v1/jobs?' + qs, signal, data => {
    rows = data.jobs || [];
    const total = data.total ?? rows.length;
    fill(tbody, ...(rows.length ? rows.map(j => {
      const cb = el('input', { type: 'checkbox', checked: selected.has(j.id), onchange: e => { e.target.checked ? selected.add(j.id) : selected.delete(j.id); updateBulk(); } });
      return el('tr', { 'data-job': j.id, 'data-state': j.state },
        el('td', {}, cb),
        el('td', {}, el('a', { href: `#/jobs/${j.id}`, class: 'mono', title: j.id }, short(j.id)), j.unique_key && el('div', { class: 'small muted' }, j.unique_key)),
        el('td', {}, j.queue), el('td', {}, j.plugin), el('td', {}, badge(j.state)),
        el('td', { class: 'num' }, `${j.attempt}/${j.max_attempts}`),
        el('td', { title: j.created_at }, ago(j.created_at)),
        fixedState ? el('td', { class: 'err small' }, (j.error || '').slice(0, 140)) : el('td', { title: j.updated_at }, ago(j.updated_at)));
    }) : [el('tr', {}, el('td', { colspan: 8, class: 'empty' }, fixedState ? 'No failed jobs. Nice.' : 'No jobs match.'))]));
    const from = total ? page * PAGE + 1 : 0, to = page * PAGE + rows.length;
    fill(pager, el('span', {}, `${fmtNum(from)}–${fmtNum(to)} of ${fmtNum(total)}`),
      el('span', { class: 'row' },
        el('button', { disabled: page === 0, onclick: () => nav({ page: page - 1 }) }, '← Newer'),
        el('button', { disabled: to >= total, onclick: () => nav({ page: page + 1 }) }, 'Older →')));
    all.checked = false;
    updateBulk();
  });
}

// ---- one job ----
function job({ view, id, signal, setTitle }) {
  setTitle('Job ' + short(id));
  const head = el('div', { class: 'row', style: 'margin-bottom:14px' });
  const info = el('div', { class: 'body' });
  const payload = el('pre', { class: 'block', id: 'job-payload' });
  const result = el('pre', { class: 'block', id: 'job-result' });
  const attempts = el('tbody');
  const progress = el('div', { class: 'body' });
  const log = el('pre', { class: 'block log', id: 'job-log' });
  const logTitle = el('span');
  view.append(head,
    el('div', { class: 'grid2' },
      el('div', { class: 'panel' }, el('h2', {}, 'Job'), info),
      el('div', {},
        el('div', { class: 'panel' }, el('h2', {}, 'Progress'), progress),
        el('div', { class: 'panel' }, el('h2', {}, 'Payload'), el('div', { class: 'body' }, payload)),
        el('div', { class: 'panel' }, el('h2', {}, 'Result'), el('div', { class: 'body' }, result)))),
    el('div', { class: 'panel' }, el('h2', {}, 'Attempts'), el('table', {}, el('thead', {}, el('tr', {},
      ['#', 'Node', 'Started', 'Duration', 'Outcome', 'Error'].map(h => el('th', {}, h)))), attempts)),
    el('div', { class: 'panel' }, el('h2', {}, logTitle), el('div', { class: 'body' }, log)));
  let logFor = '', logCtl = null;
  signal.addEventListener('abort', () => logCtl && logCtl.abort());
  async function streamLog(j) {
    const key = `${j.attempt}:${j.state === 'running'}`;
    if (!j.attempt || key === logFor) return;
    logFor = key;
    if (logCtl) logCtl.abort();
    logCtl = new AbortController();
    const follow = j.state === 'running';
    logTitle.textContent = `Log · attempt ${j.attempt}` + (follow ? ' (live)' : '');
    log.textContent = follow ? 'Waiting for output…' : '';
    let got = false;
    try {
      const headers = {};
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers['X-Corral-Token'] = token;
      const r = await fetch(`/v1/jobs/${id}/logs?attempt=${j.attempt}&follow=${follow}`, { headers, signal: logCtl.signal });
      if (r.status === 401) { askToken(); return; }
      if (!r.ok) { log.textContent = (await r.json().catch(() => ({}))).error || `no log (${r.status})`; return; }
      const reader = r.body.getReader(), dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!got) { log.textContent = ''; got = true; }
        log.textContent += dec.decode(value, { stream: true });
        log.scrollTop = log.scrollHeight;
      }
      if (!got) log.textContent = '(no output)';
    } catch (e) { if (!logCtl.signal.aborted) log.textContent = e.message; }
  }
  watch(`/v1/jobs/${encodeURIComponent(id)}`, signal, j => {
    const terminal = ['succeeded', 'failed', 'cancelled'].includes(j.state);
    fill(head, badge(j.state), el('span', { class: 'mono' }, j.id),
      el('span', { style: 'flex:1' }),
      (j.state === 'failed' || j.state === 'cancelled') && el('button', { class: 'primary', 'data-action': 'retry', onclick: () => act('POST', `/v1/jobs/${j.id}/retry`, 'Job retried') }, 'Retry'),
      !terminal && el('button', { class: 'danger', 'data-action': 'cancel', onclick: () => act('DELETE', `/v1/jobs/${j.id}`, 'Cancel requested') }, 'Cancel'));
    fill(info, el('dl', { class: 'kv' },
      el('dt', {}, 'Queue'), el('dd', {}, el('a', { href: `#/jobs?queue=${encodeURIComponent(j.queue)}` }, j.queue)),
      el('dt', {}, 'Plugin'), el('dd', {}, j.plugin),
      el('dt', {}, 'Attempt'), el('dd', {}, `${j.attempt} of ${j.max_attempts}`),
      el('dt', {}, 'Priority'), el('dd', {}, j.priority),
      el('dt', {}, 'Node'), el('dd', {}, j.node || '–'),
      el('dt', {}, 'Created'), el('dd', { title: j.created_at }, ago(j.created_at)),
      j.run_at && el('dt', {}, 'Run at'), j.run_at && el('dd', { title: j.run_at }, ago(j.run_at)),
      j.finished_at && el('dt', {}, 'Finished'), j.finished_at && el('dd', { title: j.finished_at }, ago(j.finished_at)),
      el('dt', {}, 'Timeout'), el('dd', {}, j.timeout),
      j.unique_key && el('dt', {}, 'Unique key'), j.unique_key && el('dd', { class: 'mono' }, j.unique_key),
      j.constraints && el('dt', {}, 'Constraints'), j.constraints && el('dd', { class: 'mono' }, Object.entries(j.constraints).map(([k, v]) => `${k}=${v}`).join(', ')),
      j.waiting && el('dt', {}, 'Waiting'), j.waiting && el('dd', {}, j.waiting),
      j.error && el('dt', {}, 'Error'), j.error && el('dd', { class: 'err' }, j.error)));
    const p = j.progress;
    fill(progress, p
      ? el('div', {}, el('div', { class: 'progress' }, el('span', { style: `width:${Math.min(100, p.percent)}%` })), el('div', { class: 'small muted', style: 'margin-top:6px' }, `${p.percent.toFixed(0)}% ${p.message || ''}`))
      : el('div', { class: 'muted' }, j.state === 'running' ? 'No progress reported yet.' : terminal ? 'Finished.' : 'Not running.'));
    payload.textContent = pretty(j.payload) || '(none)';
    result.textContent = pretty(j.result) || (terminal ? '(none)' : '(not finished)');
    fill(attempts, ...((j.attempts || []).length ? j.attempts.map(a => el('tr', {},
      el('td', {}, a.attempt), el('td', {}, a.node), el('td', { title: a.started }, ago(a.started)),
      el('td', {}, a.finished ? dur((new Date(a.finished) - new Date(a.started)) / 1000) : 'running'),
      el('td', {}, a.outcome ? badge(a.outcome, a.outcome === 'lost' ? 'failed' : a.outcome) : badge('running')),
      el('td', { class: 'err small' }, a.error || ''))) : [el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'Not started yet.'))]));
    streamLog(j);
  });
}
async function act(method, path, okMsg) {
  try { await api(method, path); flash(okMsg, true); } catch (e) { flash(e.message); }
}

// ---- queues ----
function queues({ view, signal, setTitle }) {
  setTitle('Queues');
  const tbody = el('tbody');
  view.append(el('div', { class: 'panel' }, el('table', { id: 'queues-table' }, el('thead', {}, el('tr', {},
    el('th', {}, 'Queue'), el('th', {}, 'Status'), ...STATES.map(s => el('th', { class: 'num' }, s)),
    el('th', { class: 'num' }, 'Concurrency'), el('th', {}, ''))), tbody)));
  watch('/v1/queues', signal, data => {
    const qs = data.queues || [];
    fill(tbody, ...(qs.length ? qs.map(q => el('tr', { 'data-queue': q.name },
      el('td', {}, el('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.name)),
      el('td', {}, q.paused ? badge('paused') : badge('active', 'alive')),
      ...STATES.map(s => el('td', { class: 'num' }, q.counts[s] ? el('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}&state=${s}` }, fmtNum(q.counts[s])) : '0')),
      el('td', { class: 'num' }, q.concurrency || '∞'),
      el('td', {}, q.paused
        ? el('button', { 'data-action': 'resume', onclick: () => act('POST', `/v1/queues/${encodeURIComponent(q.name)}/resume`, `Queue ${q.name} resumed`) }, 'Resume')
        : el('button', { 'data-action': 'pause', onclick: () => act('POST', `/v1/queues/${encodeURIComponent(q.name)}/pause`, `Queue ${q.name} paused`) }, 'Pause'))))
      : [el('tr', {}, el('td', { colspan: 10, class: 'empty' }, 'No queues yet.'))]));
  });
}

// ---- cluster ----
function cluster({ view, signal, setTitle }) {
  setTitle('Cluster');
  const health = el('div', { class: 'body' });
  const members = el('tbody'), servers = el('tbody');
  view.append(el('div', { class: 'panel' }, el('h2', {}, 'Health'), health),
    el('div', { class: 'panel' }, el('h2', {}, 'Raft peers'), el('table', {}, el('thead', {}, el('tr', {},
      ['Node', 'ID', 'Address', 'Role', 'Voter'].map(h => el('th', {}, h)))), servers)),
    el('div', { class: 'panel' }, el('h2', {}, 'Members (Serf)'), el('table', {}, el('thead', {}, el('tr', {},
      ['Name', 'Address', 'Status', 'HTTP', 'Plugins', 'Tags'].map(h => el('th', {}, h)))), members)));
  // Membership is not in the replicated state: refresh it whenever the
  // queue state moves (a blocking query, at most every 30 s when idle).
  watch('/v1/queues', signal, async () => {
    await refreshHealth(health, signal);
    const [m, r] = await Promise.all([api('GET', '/v1/members', undefined, signal), api('GET', '/v1/operator/raft/configuration', undefined, signal)]);
    fill(servers, ...(r.data.servers || []).map(s => el('tr', {},
      el('td', {}, s.node || '?'), el('td', { class: 'mono small' }, s.id), el('td', { class: 'mono' }, s.address),
      el('td', {}, s.leader ? badge('leader') : badge('follower', 'outline')), el('td', {}, s.voter ? 'voter' : 'non-voter'))));
    fill(members, ...(m.data || []).map(x => el('tr', {},
      el('td', {}, x.name), el('td', { class: 'mono' }, x.addr), el('td', {}, badge(x.status, x.status === 'alive' ? 'alive' : x.status === 'left' ? 'left' : 'failed')),
      el('td', { class: 'mono' }, x.tags.http || ''), el('td', {}, (x.tags.plugins || '').split(',').filter(Boolean).join(', ')),
      el('td', { class: 'small muted' }, Object.entries(x.tags).filter(([k]) => !['id', 'raft', 'http', 'role', 'expect', 'plugins'].includes(k)).map(([k, v]) => `${k}=${v}`).join(' ')))));
  });
}

// ---- plugins ----
function plugins({ view, signal, setTitle }) {
  setTitle('Plugins');
  const local = el('tbody'), perNode = el('tbody');
  const localTitle = el('h2', {}, 'This node');
  view.append(el('div', { class: 'panel' }, localTitle, el('table', { id: 'plugins-table' }, el('thead', {}, el('tr', {},
    ['Plugin', 'Version', 'Status', 'Running', 'Restarts', 'PID', 'Path'].map(h => el('th', {}, h)))), local)),
  el('div', { class: 'panel' }, el('h2', {}, 'Plugins per node'), el('table', {}, el('thead', {}, el('tr', {},
    el('th', {}, 'Node'), el('th', {}, 'Status'), el('th', {}, 'Plugins'))), perNode)));
  watch('/v1/queues', signal, async () => {
    const [p, m] = await Promise.all([api('GET', '/v1/plugins', undefined, signal), api('GET', '/v1/members', undefined, signal)]);
    localTitle.textContent = 'This node · ' + p.data.node;
    fill(local, ...(p.data.plugins || []).map(x => el('tr', {},
      el('td', {}, el('strong', {}, x.name), x.builtin && el('span', { class: 'badge outline', style: 'margin-left:6px' }, 'built-in'), x.description && el('div', { class: 'small muted' }, x.description)),
      el('td', {}, x.version || ''), el('td', {}, badge(x.status, x.status === 'failed' ? 'failed' : x.status), x.error && el('div', { class: 'small err' }, x.error)),
      el('td', {}, `${x.running} / ${x.concurrency}`), el('td', {}, x.restarts || 0), el('td', { class: 'mono' }, x.pid || ''),
      el('td', { class: 'mono small muted' }, x.path || ''))));
    fill(perNode, ...(m.data || []).map(x => el('tr', {}, el('td', {}, x.name),
      el('td', {}, badge(x.status, x.status === 'alive' ? 'alive' : 'failed')),
      el('td', {}, (x.tags.plugins || '').split(',').filter(Boolean).map(n => el('span', { class: 'badge outline', style: 'margin-right:4px' }, n))))));
  });
}

// The failed count in the navigation stays current on every page.
let navWatching = false;
function watchNav() {
  if (navWatching) return;
  navWatching = true;
  watch('/v1/queues', new AbortController().signal, data => {
    let failed = 0;
    for (const q of data.queues || []) failed += q.counts.failed || 0;
    $('#nav-failed').textContent = failed ? fmtNum(failed) : '';
  }).finally(() => { navWatching = false; });
}
window.addEventListener('hashchange', watchNav);
$('#login-form').addEventListener('submit', watchNav);

updateTokenButton();
route();
watchNav();
