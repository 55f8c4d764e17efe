// app.js -- the Distribuerad dashboard: plain DOM, no framework, no build.
//
// Views (the URL hash): "#/" every channel; "#/c/<channel>" one channel:
// its statistics, settings, events page by page and jobs. The current view
// refreshes itself every 2 s without a reload.
//
// Safety: everything that comes from the server or a user (channel names,
// event data, job names) is put into the page as text (textContent,
// attribute properties), never parsed as HTML; the server's
// Content-Security-Policy allows no inline script.
//
// The token: when the API answers 401 the page asks for it and keeps it in
// sessionStorage (this tab only). Routes of the API's Part C (paging,
// settings, purge, redrive, job pause/resume/trigger, next runs) are called
// as the contract says; a server that does not have them yet answers
// 404/405/400, and the page then shows what it can and says what is missing.
'use strict';

const TOKEN_KEY = 'distribuerad.token';
const REFRESH_MS = 2000;
const PAGE_SIZE = 20;
const PREVIEW_CHARS = 80;

const $ = (id) => document.getElementById(id);

// ---- DOM helpers: text only ----

// el('td', {className: 'num'}, 'text', childNode, ...): properties are set
// as properties (never innerHTML); string children become text nodes.
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const kid of kids) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : String(kid));
  }
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function say(text, isError) {
  const m = $('msg');
  m.textContent = text;
  m.className = isError ? 'error' : 'ok';
}

// ---- formatting ----

function preview(data) {
  const s = typeof data === 'string' ? data : JSON.stringify(data);
  return s.length > PREVIEW_CHARS ? s.slice(0, PREVIEW_CHARS) + '…' : s;
}

function fullText(data) {
  return typeof data === 'string' ? data : JSON.stringify(data);
}

function fmtTime(t) {
  return t ? t.slice(0, 19).replace('T', ' ') : '–';
}

function fmtAge(secs) {
  if (secs === undefined || secs === null) return '–';
  if (secs < 60) return secs.toFixed(secs < 10 ? 1 : 0) + ' s';
  if (secs < 3600) return Math.floor(secs / 60) + ' m ' + Math.floor(secs % 60) + ' s';
  if (secs < 86400) return Math.floor(secs / 3600) + ' h ' + Math.floor((secs % 3600) / 60) + ' m';
  return Math.floor(secs / 86400) + ' d ' + Math.floor((secs % 86400) / 3600) + ' h';
}

function fromNow(t) {
  if (!t) return '';
  const d = (Date.parse(t) - Date.now()) / 1000;
  return d >= 0 ? 'in ' + fmtAge(d) : fmtAge(-d) + ' ago';
}

const enc = encodeURIComponent;

// ---- the API ----

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
  // The server does not have this route yet (Part C on an older server).
  get missing() {
    return this.status === 404 || this.status === 405;
  }
}

let askingToken = null; // a promise while the token form is shown

// Calls the API; resolves to the parsed JSON (or null for an empty body).
// On 401 it shows the token form and retries once a token is given.
async function api(method, path, body, headers) {
  for (;;) {
    const h = Object.assign({}, headers);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) h.Authorization = 'Bearer ' + token;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method, headers: h, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (r.status === 401) {
      await askToken(token ? 'That token was refused.' : '');
      continue;
    }
    if (!r.ok) throw new ApiError(r.status, (json && json.error) || r.status + ' ' + r.statusText);
    return json;
  }
}

function askToken(why) {
  if (!askingToken) {
    const form = $('token-form');
    form.hidden = false;
    $('token-error').textContent = why;
    $('token-input').focus();
    askingToken = new Promise((resolve) => {
      form.onsubmit = (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim());
        $('token-input').value = '';
        form.hidden = true;
        $('forget-token').hidden = false;
        askingToken = null;
        resolve();
      };
    });
  }
  return askingToken;
}

// Runs an action from a button: shows the result or the server's error.
async function act(what, fn, missingText) {
  try {
    const r = await fn();
    say(what + ': done.');
    refresh();
    return r;
  } catch (e) {
    if (e instanceof ApiError && e.missing && missingText) say(what + ': ' + missingText, true);
    else say(what + ': ' + e.message, true);
    return undefined;
  }
}

// ---- the overview ----

const rates = new Map(); // channel -> {at, published, deleted, pubRate, delRate}

function noteRates(stats) {
  const now = performance.now();
  for (const s of stats) {
    const prev = rates.get(s.channelName);
    const cur = { at: now, published: s.published, deleted: s.deleted, pubRate: null, delRate: null };
    if (prev && now > prev.at) {
      const dt = (now - prev.at) / 1000;
      cur.pubRate = Math.max(0, (s.published - prev.published) / dt);
      cur.delRate = Math.max(0, (s.deleted - prev.deleted) / dt);
    }
    rates.set(s.channelName, cur);
  }
}

function fmtRate(r) {
  return r === null || r === undefined ? '–' : r.toFixed(r < 10 ? 1 : 0) + '/s';
}

function renderOverview(view) {
  const body = el('tbody', { id: 'channels-body' });
  const table = el('table', { id: 'channels' },
    el('thead', {}, el('tr', {},
      ...['channel', 'ready', 'scheduled', 'locked', 'jobs', 'oldest ready', 'published', 'deleted',
        'expired', 'publish rate', 'delete rate'].map((h) => el('th', {}, h)))),
    body);
  const go = el('input', { id: 'goto-channel', placeholder: 'channel name', required: true });
  const form = el('form', {
    className: 'inline',
    onsubmit: (ev) => { ev.preventDefault(); location.hash = '#/c/' + enc(go.value); },
  }, go, el('button', { type: 'submit' }, 'Open channel'));
  view.append(el('h1', {}, 'Channels'), form, table,
    el('p', { id: 'channels-empty', className: 'muted', hidden: true }, 'No channels yet: publish an event to create one.'));
  return async () => {
    const r = await api('GET', '/channels');
    noteRates(r.channels);
    clear(body);
    for (const s of r.channels) body.append(channelRow(s));
    $('channels-empty').hidden = r.channels.length > 0;
  };
}

function channelRow(s) {
  const rt = rates.get(s.channelName) || {};
  const link = el('a', { href: '#/c/' + enc(s.channelName), className: 'channel-link' }, s.channelName);
  const num = (v) => el('td', { className: 'num' }, v === undefined ? '–' : v);
  return el('tr', { dataset: { channel: s.channelName } },
    el('td', {}, link), num(s.ready), num(s.scheduled), num(s.locked), num(s.jobs),
    el('td', { className: 'num oldest' }, fmtAge(s.oldestReadyAge)),
    num(s.published), num(s.deleted), num(s.expired),
    el('td', { className: 'num' }, fmtRate(rt.pubRate)), el('td', { className: 'num' }, fmtRate(rt.delRate)));
}

// ---- one channel ----

function renderChannel(view, name) {
  const base = '/' + enc(name);
  const page = { state: 'visible', cursors: [''], clientOffset: 0, note: '' };
  const statsLine = el('p', { id: 'stats', className: 'stats' });
  const eventsBody = el('tbody', { id: 'events-body' });
  const pager = el('div', { className: 'pager' });
  const jobsBody = el('tbody', { id: 'jobs-body' });
  const settingsBox = el('div', { id: 'settings' });

  view.append(
    el('p', {}, el('a', { href: '#/' }, '← all channels')),
    el('h1', {}, 'Channel ', el('span', { id: 'channel-name', className: 'name' }, name)),
    statsLine,
    channelActions(base, name),
    publishForm(base),
    el('h2', {}, 'Events'),
    stateFilter(page, () => refresh()),
    el('table', { id: 'events' }, el('thead', {}, el('tr', {},
      ...['id', 'state', 'published', 'lock ends', 'lives until', 'deliveries', 'priority', 'data', '']
        .map((h) => el('th', {}, h)))), eventsBody),
    pager,
    el('h2', {}, 'Jobs'),
    el('table', { id: 'jobs' }, el('thead', {}, el('tr', {},
      ...['job', 'cron', 'data', 'next runs', 'runs', 'last run', 'state', '']
        .map((h) => el('th', {}, h)))), jobsBody),
    jobForm(base),
    el('h2', {}, 'Settings'),
    settingsBox);

  let settingsLoaded = false;
  return async () => {
    const stats = await api('GET', base);
    renderStats(statsLine, stats);
    await loadEvents(base, page, eventsBody, pager);
    await loadJobs(base, jobsBody);
    if (!settingsLoaded) settingsLoaded = await loadSettings(base, settingsBox);
  };
}

function renderStats(p, s) {
  clear(p);
  const parts = [['ready', s.ready], ['scheduled', s.scheduled], ['locked', s.locked], ['jobs', s.jobs],
    ['published', s.published], ['deleted', s.deleted], ['expired', s.expired]];
  if (s.deadLettered !== undefined) parts.push(['dead-lettered', s.deadLettered]);
  for (const [k, v] of parts) p.append(el('span', { className: 'stat', dataset: { stat: k } }, el('b', {}, v), ' ' + k));
  p.append(el('span', { className: 'stat' }, 'oldest ready: ', el('b', {}, fmtAge(s.oldestReadyAge))));
}

function channelActions(base, name) {
  const to = el('input', { placeholder: 'to (default: where each came from)', size: 28 });
  const max = el('input', { type: 'number', min: 1, placeholder: 'max', className: 'short' });
  const purge = el('button', {
    type: 'button', id: 'purge', className: 'danger',
    onclick: () => confirm('Delete every event of this channel?') &&
      act('Purge', () => api('POST', base + '/purge'), 'this server has no purge yet.'),
  }, 'Purge events');
  const del = el('button', {
    type: 'button', id: 'delete-channel', className: 'danger',
    onclick: () => confirm('Delete this channel with its events, jobs and settings?') &&
      act('Delete channel', () => api('DELETE', base), 'this server cannot delete channels yet.')
        .then((r) => { if (r !== undefined) location.hash = '#/'; }),
  }, 'Delete channel');
  const redrive = el('form', {
    className: 'inline', id: 'redrive-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      const b = {};
      if (to.value) b.to = to.value;
      if (max.value) b.max = Number(max.value);
      act('Redrive', () => api('POST', base + '/redrive', b).then((r) => say('Redrive: moved ' + r.moved + '.')),
        'this server has no redrive yet.');
    },
  }, el('button', { type: 'submit' }, 'Redrive dead letters'), to, max);
  return el('div', { className: 'actions' }, purge, del, redrive);
}

function publishForm(base) {
  const data = el('textarea', { id: 'publish-data', rows: 2, placeholder: 'data' });
  const asJson = el('input', { type: 'checkbox', id: 'publish-json' });
  const publishIn = el('input', { id: 'publish-in', placeholder: 'publish in (30s)', size: 12 });
  const ttl = el('input', { id: 'publish-ttl', placeholder: 'ttl (10m)', size: 10 });
  const prio = el('input', { id: 'publish-priority', type: 'number', min: 0, max: 9, placeholder: 'priority', className: 'short' });
  const submit = (ev) => {
    ev.preventDefault();
    const b = {};
    try {
      b.data = asJson.checked ? JSON.parse(data.value) : data.value;
    } catch (e) {
      say('Publish: the data is not valid JSON.', true);
      return;
    }
    if (publishIn.value) b.publishIn = publishIn.value;
    if (ttl.value) b.ttl = ttl.value;
    if (prio.value !== '') b.priority = Number(prio.value);
    act('Publish', () => api('POST', base + '/events', b).then((e) => { data.value = ''; return e; }));
  };
  return el('form', { id: 'publish-form', className: 'panel', onsubmit: submit },
    el('h2', {}, 'Publish'), data,
    el('div', { className: 'row' },
      el('label', {}, asJson, ' data is JSON'), publishIn, ttl, prio,
      el('button', { type: 'submit', id: 'publish-submit' }, 'Publish')));
}

function stateFilter(page, changed) {
  const sel = el('select', { id: 'state-filter' },
    ...['visible', 'ready', 'locked', 'scheduled'].map((s) => el('option', { value: s }, s)));
  sel.onchange = () => {
    page.state = sel.value;
    page.cursors = [''];
    page.clientOffset = 0;
    changed();
  };
  return el('div', { className: 'row' }, el('label', {}, 'show ', sel), el('span', { id: 'events-note', className: 'muted' }));
}

// Fetches the current page. The server pages with limit/after/state (Part C);
// one that ignores them answers every visible event, which is then filtered
// and paged here.
async function loadEvents(base, page, body, pager) {
  const cursor = page.cursors[page.cursors.length - 1];
  let q = '?limit=' + PAGE_SIZE + '&state=' + enc(page.state) + (cursor ? '&after=' + enc(cursor) : '');
  let r;
  try {
    r = await api('GET', base + '/events' + q);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 400) throw e;
    r = await api('GET', base + '/events'); // a server without paging parameters
  }
  let events = r.events;
  let next = r.next;
  let note = '';
  const serverPaged = events.length <= PAGE_SIZE && (next !== undefined || events.every((e) => matchesState(e, page.state)));
  if (!serverPaged) {
    events = events.filter((e) => matchesState(e, page.state));
    if (page.state === 'scheduled') note = 'This server lists only visible events, not scheduled ones.';
    next = page.clientOffset + PAGE_SIZE < events.length ? 'client' : undefined;
    events = events.slice(page.clientOffset, page.clientOffset + PAGE_SIZE);
  }
  $('events-note').textContent = note;
  clear(body);
  for (const ev of events) body.append(eventRow(base, ev));
  if (!events.length) body.append(el('tr', {}, el('td', { colSpan: 9, className: 'muted' }, 'No events.')));
  renderPager(page, pager, next, serverPaged);
}

function matchesState(e, state) {
  const s = e.state || (e.isLocked ? 'locked' : 'ready');
  return state === 'visible' ? s !== 'scheduled' : s === state;
}

function renderPager(page, pager, next, serverPaged) {
  clear(pager);
  const first = page.cursors.length === 1 && page.clientOffset === 0;
  const prev = el('button', {
    type: 'button', id: 'page-prev', disabled: first,
    onclick: () => {
      if (serverPaged) page.cursors.pop();
      else page.clientOffset = Math.max(0, page.clientOffset - PAGE_SIZE);
      refresh();
    },
  }, '← previous');
  const nxt = el('button', {
    type: 'button', id: 'page-next', disabled: !next,
    onclick: () => {
      if (serverPaged) page.cursors.push(next);
      else page.clientOffset += PAGE_SIZE;
      refresh();
    },
  }, 'next →');
  const n = serverPaged ? page.cursors.length : page.clientOffset / PAGE_SIZE + 1;
  pager.append(prev, el('span', { className: 'muted' }, ' page ' + n + ' '), nxt);
}

function eventRow(base, ev) {
  const path = base + '/events/' + enc(ev.eventID);
  const state = ev.state || (ev.isLocked ? 'locked' : 'ready');
  const buttons = el('td', { className: 'buttons' });
  if (state === 'locked') {
    buttons.append(el('button', {
      type: 'button', className: 'unlock',
      onclick: () => act('Unlock', () => api('PUT', path, { action: 'UNLOCK' })),
    }, 'Unlock'));
  }
  buttons.append(el('button', {
    type: 'button', className: 'delete',
    onclick: () => act('Delete', () => api('DELETE', path)),
  }, 'Delete'));
  return el('tr', { dataset: { event: ev.eventID } },
    el('td', { className: 'mono' }, ev.eventID),
    el('td', {}, el('span', { className: 'state ' + state }, state)),
    el('td', { title: ev.publishedAt }, fmtTime(ev.publishedAt)),
    el('td', { title: ev.lockedUntil || '' }, ev.lockedUntil ? fromNow(ev.lockedUntil) : '–'),
    el('td', { title: ev.livesUntil }, fromNow(ev.livesUntil)),
    el('td', { className: 'num' }, ev.deliveries === undefined ? '–' : ev.deliveries),
    el('td', { className: 'num' }, ev.priority === undefined ? '–' : ev.priority),
    el('td', { className: 'data', title: fullText(ev.data) }, preview(ev.data)),
    buttons);
}

// ---- jobs ----

async function loadJobs(base, body) {
  const r = await api('GET', base + '/jobs');
  const rows = await Promise.all(r.jobs.map((j) => jobWithRuns(base, j)));
  clear(body);
  for (const j of rows) body.append(jobRow(base, j));
  if (!rows.length) body.append(el('tr', {}, el('td', { colSpan: 8, className: 'muted' }, 'No jobs.')));
}

// The job with nextRuns (Part C: ?next=N); without it, its nextRunAt.
async function jobWithRuns(base, j) {
  try {
    const full = await api('GET', base + '/jobs/' + enc(j.jobID) + '?next=3');
    return full.nextRuns ? full : Object.assign(full, { nextRuns: full.nextRunAt ? [full.nextRunAt] : [] });
  } catch (e) {
    return Object.assign(j, { nextRuns: j.nextRunAt ? [j.nextRunAt] : [] });
  }
}

function jobRow(base, j) {
  const path = base + '/jobs/' + enc(j.jobID);
  const newer = 'this server cannot do that yet.';
  const btn = (label, cls, fn) => el('button', { type: 'button', className: cls, onclick: fn }, label);
  const buttons = el('td', { className: 'buttons' },
    j.paused
      ? btn('Resume', 'resume', () => act('Resume', () => api('POST', path + '/resume'), newer))
      : btn('Pause', 'pause', () => act('Pause', () => api('POST', path + '/pause'), newer)),
    btn('Trigger', 'trigger', () => act('Trigger', () => api('POST', path + '/trigger'), newer)),
    btn('Delete', 'delete', () => act('Delete job', () => api('DELETE', path))));
  const runs = el('td', { className: 'runs' });
  for (const t of j.nextRuns) runs.append(el('div', { title: t }, fmtTime(t) + ' (' + fromNow(t) + ')'));
  if (!j.nextRuns.length) runs.append('–');
  return el('tr', { dataset: { job: j.jobID } },
    el('td', { className: 'name' }, j.jobID),
    el('td', { className: 'mono' }, j.cron),
    el('td', { className: 'data', title: fullText(j.data) }, preview(j.data)),
    runs,
    el('td', { className: 'num' }, j.runs === undefined ? '–' : j.runs),
    el('td', {}, j.lastRunAt ? fmtTime(j.lastRunAt) : '–'),
    el('td', {}, j.paused ? 'paused' : 'active'),
    buttons);
}

function jobForm(base) {
  const name = el('input', { id: 'job-name', placeholder: 'name', required: true, size: 14 });
  const cron = el('input', { id: 'job-cron', placeholder: 'cron (*/5 * * * *, @every 10s)', required: true, size: 24 });
  const data = el('input', { id: 'job-data', placeholder: 'data', size: 20 });
  const ttl = el('input', { id: 'job-ttl', placeholder: 'ttl (10m)', size: 8 });
  const submit = (ev) => {
    ev.preventDefault();
    const b = { name: name.value, cronDef: cron.value, data: data.value };
    if (ttl.value) b.ttl = ttl.value;
    act('Add job', () => api('POST', base + '/jobs', b).then((j) => { name.value = ''; return j; }));
  };
  return el('form', { id: 'job-form', className: 'inline', onsubmit: submit },
    name, cron, data, ttl, el('button', { type: 'submit' }, 'Add job'));
}

// ---- settings (Part C) ----

// Returns true once shown (or known to be missing), so it is loaded once
// and the form is not overwritten while someone edits it.
async function loadSettings(base, box) {
  let s;
  try {
    s = await api('GET', base + '/settings');
  } catch (e) {
    if (!(e instanceof ApiError) || (!e.missing && e.status !== 400)) throw e;
    clear(box).append(el('p', { className: 'muted', id: 'settings-missing' },
      'This server has no channel settings yet (retries and dead letters).'));
    return true;
  }
  const maxD = el('input', { type: 'number', min: 0, id: 'set-max', value: s.maxDeliveries, className: 'short' });
  const dlc = el('input', { id: 'set-dlc', value: s.deadLetterChannel, placeholder: 'none' });
  const delay = el('input', { id: 'set-delay', value: s.retryDelay, size: 8 });
  const submit = (ev) => {
    ev.preventDefault();
    const b = { maxDeliveries: Number(maxD.value || 0), deadLetterChannel: dlc.value, retryDelay: delay.value || '0s' };
    act('Settings', () => api('PUT', base + '/settings', b));
  };
  clear(box).append(el('form', { className: 'inline', id: 'settings-form', onsubmit: submit },
    el('label', {}, 'max deliveries ', maxD), el('label', {}, 'dead-letter channel ', dlc),
    el('label', {}, 'retry delay ', delay), el('button', { type: 'submit' }, 'Save')));
  return true;
}

// ---- the loop ----

let current = null; // {hash, load}
let loading = false;
let again = false;    // a refresh was asked for while one ran
function route() {
  const view = clear($('view'));
  const h = location.hash || '#/';
  say('');
  if (h.startsWith('#/c/')) {
    let name;
    try { name = decodeURIComponent(h.slice(4)); } catch (e) { name = h.slice(4); }
    current = { hash: h, load: renderChannel(view, name) };
  } else {
    current = { hash: h, load: renderOverview(view) };
  }
  refresh();
}

// Loads the current view; a refresh asked for while one runs (an action's,
// a new view's) runs right after it instead of being lost.
async function refresh() {
  if (!current) return;
  if (loading) {
    again = true;
    return;
  }
  loading = true;
  do {
    again = false;
    const cur = current;
    try {
      await cur.load();
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      if (cur === current) say(e.message, true);
    }
  } while (again);
  loading = false;
}

async function serverState() {
  const b = $('server-state');
  try {
    const r = await fetch('/readyz', { cache: 'no-store' });
    b.textContent = r.ok ? 'ready' : 'not ready';
    b.className = 'badge ' + (r.ok ? 'good' : 'bad');
  } catch (e) {
    b.textContent = 'unreachable';
    b.className = 'badge bad';
  }
}

function start() {
  $('forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
  $('forget-token').onclick = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('forget-token').hidden = true;
    refresh();
  };
  window.addEventListener('hashchange', route);
  setInterval(() => {
    if ($('auto-refresh').checked && !document.hidden && !askingToken) {
      refresh();
      serverState();
    }
  }, REFRESH_MS);
  serverState();
  route();
}

start();
