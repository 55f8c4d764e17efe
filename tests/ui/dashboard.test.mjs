// dashboard.test.mjs -- the dashboard in a real browser: Debian's chromium
// driven by playwright-core, against the real server binary.
//
// Usage: node tests/ui/dashboard.test.mjs [BINARY]   (default ./distribuerad)
//        node tests/ui/dashboard.test.mjs --screenshot docs/dashboard.png [BINARY]
// Prints a line per test and closes with "ui: N passed, M failed".
// Environment: CHROMIUM (default /usr/bin/chromium).
//
// What it clicks and checks:
//   - the overview lists the channels the API holds, with their counts;
//   - it updates without a reload when events are published meanwhile;
//   - a channel's page lists its events (state, data) and jobs (next run);
//   - Publish, Delete and Unlock on the page change what the API holds;
//   - Purge and job Pause/Trigger either work or say the server lacks them;
//   - a channel name and data of <img src=x onerror=...> show as text;
//   - with -auth-token the page asks for the token, refuses a wrong one,
//     then shows the data and keeps the token in sessionStorage;
//   - /ui answers with a Content-Security-Policy without inline script.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = await import(path.join(here, 'node_modules', 'playwright-core', 'index.mjs'));

const args = process.argv.slice(2);
let shot = null;
if (args[0] === '--screenshot') {
  shot = args[1];
  args.splice(0, 2);
}
const BIN = path.resolve(args[0] || './distribuerad');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10000; // ms for anything the page should show

// ---- the server ----

// Starts the binary on a free port; resolves to {url, stop}.
function startServer(extra = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'distribuerad-ui-'));
  const proc = spawn(BIN, ['-address', '127.0.0.1', '-port', '0', '-in-memory', ...extra],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + log)), 10000);
    const onData = (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/[0-9.]+:[0-9]+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          stop: () => { proc.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); },
        });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error('server exited ' + code + ':\n' + log)));
  });
}

function client(base, token) {
  return async (method, p, body) => {
    const headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null, headers: r.headers };
  };
}

// ---- a tiny runner ----

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function eq(a, b, msg) {
  if (a !== b) throw new Error(msg + ': got ' + JSON.stringify(a) + ', want ' + JSON.stringify(b));
}

async function until(fn, what, ms = WAIT) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what + ' (last: ' + last + ')');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const uniq = (p) => p + '-' + Math.random().toString(36).slice(2, 9);
const cell = (page, ch, col) => page.locator(`tr[data-channel="${ch}"] td`).nth(col).textContent();

// ---- tests against one open server ----

test('the overview shows the channels and counts the API holds', async ({ page, api, url }) => {
  const a = uniq('orders'), b = uniq('mail');
  for (let i = 0; i < 3; i++) await api('POST', `/${a}/events`, { data: 'o' + i });
  await api('POST', `/${b}/events`, { data: 'm', publishIn: '1h' });
  await page.goto(url + '/ui/');
  for (const [ch, ready, sched] of [[a, '3', '0'], [b, '0', '1']]) {
    await until(async () => (await cell(page, ch, 1)) === ready, ch + ' ready = ' + ready);
    eq(await cell(page, ch, 2), sched, ch + ' scheduled');
  }
  const listed = (await api('GET', '/channels')).json.channels.map((c) => c.channelName);
  const rows = await page.locator('#channels-body tr').evaluateAll((trs) => trs.map((t) => t.dataset.channel));
  eq(JSON.stringify(rows), JSON.stringify(listed), 'rows in the order of GET /channels');
});

test('the overview updates without a reload', async ({ page, api, url }) => {
  const ch = uniq('live');
  await api('POST', `/${ch}/events`, { data: 'x' });
  await page.goto(url + '/ui/');
  await until(async () => (await cell(page, ch, 1)) === '1', 'first count');
  await page.evaluate(() => { window.stillHere = true; });
  for (let i = 0; i < 4; i++) await api('POST', `/${ch}/events`, { data: 'y' });
  await until(async () => (await cell(page, ch, 1)) === '5', 'count 5 after publishing elsewhere');
  assert(await page.evaluate(() => window.stillHere === true), 'the page was reloaded');
});

test('a channel page lists its events and jobs', async ({ page, api, url }) => {
  const ch = uniq('page');
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await api('POST', `/${ch}/events`, { data: 'event number ' + i })).json.eventID);
  await api('PUT', `/${ch}/events/${ids[1]}`, { action: 'LOCK', ttl: '5m' });
  await api('POST', `/${ch}/jobs`, { name: 'nightly', cronDef: '0 2 * * *', data: 'report' });
  await page.goto(url + '/ui/#/c/' + ch);
  await until(async () => (await page.locator('#events-body tr[data-event]').count()) === 3, '3 event rows');
  for (let i = 0; i < 3; i++) {
    const row = page.locator(`tr[data-event="${ids[i]}"]`);
    assert((await row.textContent()).includes('event number ' + i), 'row ' + i + ' shows its data');
    eq(await row.locator('.state').textContent(), i === 1 ? 'locked' : 'ready', 'state of ' + i);
  }
  const job = page.locator('tr[data-job="nightly"]');
  await until(() => job.count(), 'the job row');
  const next = (await api('GET', `/${ch}/jobs/nightly`)).json.nextRunAt;
  assert((await job.locator('.runs').textContent()).includes(next.slice(0, 16).replace('T', ' ')),
    'the job row shows its next run ' + next);
});

test('publish, delete and unlock on the page change the queue', async ({ page, api, url }) => {
  const ch = uniq('act');
  const locked = (await api('POST', `/${ch}/events`, { data: 'keep' })).json.eventID;
  await api('PUT', `/${ch}/events/${locked}`, { action: 'LOCK', ttl: '5m' });
  await page.goto(url + '/ui/#/c/' + ch);
  await until(() => page.locator(`tr[data-event="${locked}"]`).count(), 'the locked row');

  await page.fill('#publish-data', 'from the browser');
  await page.click('#publish-submit');
  const published = await until(async () =>
    (await api('GET', `/${ch}/events`)).json.events.find((e) => e.data === 'from the browser'), 'the published event');
  await until(() => page.locator(`tr[data-event="${published.eventID}"]`).count(), 'its row');

  await page.locator(`tr[data-event="${published.eventID}"] button.delete`).click();
  await until(async () => (await api('GET', `/${ch}/events/${published.eventID}`)).status === 404, 'the event deleted');
  await until(async () => (await page.locator(`tr[data-event="${published.eventID}"]`).count()) === 0, 'its row gone');

  await page.locator(`tr[data-event="${locked}"] button.unlock`).click();
  await until(async () => (await api('GET', `/${ch}/events/${locked}`)).json.state === 'ready', 'the event unlocked');
  await until(async () => (await page.locator(`tr[data-event="${locked}"] .state`).textContent()) === 'ready', 'row ready');
});

test('purge and job pause/trigger work or say the server lacks them', async ({ page, api, url }) => {
  const ch = uniq('partc');
  await api('POST', `/${ch}/events`, { data: 'a' });
  await api('POST', `/${ch}/jobs`, { name: 'j', cronDef: '@hourly' });
  page.on('dialog', (d) => d.accept());
  await page.goto(url + '/ui/#/c/' + ch);
  await until(() => page.locator('tr[data-job="j"]').count(), 'the job row');
  await page.click('#purge');
  await until(async () => /Purge: (done|this server has no purge)/.test(await page.textContent('#msg')), 'purge answer');
  if ((await page.textContent('#msg')).includes('done')) eq((await api('GET', `/${ch}/events`)).json.count, 0, 'purged');
  await page.locator('tr[data-job="j"] button.pause').click();
  await until(async () => /Pause: (done|this server cannot)/.test(await page.textContent('#msg')), 'pause answer');
  if ((await page.textContent('#msg')).includes('done')) eq((await api('GET', `/${ch}/jobs/j`)).json.paused, true, 'paused');
  assert(await page.locator('#settings').textContent(), 'the settings section says something');
});

test('names and data written by users show as text', async ({ page, api, url }) => {
  const evil = '<img src=x onerror="window.hacked=1">';
  const ch = evil + uniq('');
  const r = await api('POST', '/' + encodeURIComponent(ch) + '/events', { data: evil });
  eq(r.status, 201, 'publish to the odd channel');
  await api('POST', '/' + encodeURIComponent(ch) + '/jobs', { name: evil, cronDef: '@daily', data: evil });
  await page.goto(url + '/ui/');
  const link = page.locator('a.channel-link', { hasText: ch });
  await until(() => link.count(), 'the channel row');
  eq(await link.textContent(), ch, 'the link text is the name');
  await link.click();
  await until(() => page.locator('#events-body tr[data-event]').count(), 'the event row');
  await until(() => page.locator('#jobs-body tr[data-job]').count(), 'the job row');
  eq(await page.textContent('#channel-name'), ch, 'the heading is the name');
  eq(await page.locator('#events-body td.data').first().textContent(), evil, 'the data as text');
  eq(await page.locator('#jobs-body td.name').first().textContent(), evil, 'the job name as text');
  eq(await page.locator('img').count(), 0, 'no <img> element was made');
  assert(!(await page.evaluate(() => window.hacked)), 'the handler ran');
});

test('/ui has a Content-Security-Policy without inline script', async ({ url }) => {
  for (const p of ['/ui', '/ui/', '/ui/assets/app.js', '/ui/assets/app.css']) {
    const resp = await fetch(url + p);
    eq(resp.status, 200, p);
    const csp = resp.headers.get('content-security-policy') || '';
    assert(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), p + ': CSP ' + csp);
  }
  const html = await (await fetch(url + '/ui/')).text();
  assert(!/<script(?![^>]*\bsrc=)/i.test(html), 'an inline <script> in the page');
});

// ---- a server with a token ----

test('the page asks for the token and keeps it for the tab', async ({ browser }) => {
  const srv = await startServer(['-auth-token', 's3cret']);
  try {
    const api = client(srv.url, 's3cret');
    const ch = uniq('secret');
    await api('POST', `/${ch}/events`, { data: 'x' });
    const page = await browser.newPage();
    await page.goto(srv.url + '/ui/');
    await page.waitForSelector('#token-form:not([hidden])', { timeout: WAIT });
    await page.fill('#token-input', 'wrong');
    await page.click('#token-form button');
    await until(async () => (await page.textContent('#token-error')).includes('refused'), 'wrong token refused');
    await page.fill('#token-input', 's3cret');
    await page.click('#token-form button');
    await until(async () => (await cell(page, ch, 1)) === '1', 'the channel after the token');
    eq(await page.evaluate(() => sessionStorage.getItem('distribuerad.token')), 's3cret', 'sessionStorage');
    eq(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    await page.close();
  } finally {
    srv.stop();
  }
});

// ---- main ----

async function main() {
  const srv = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  let passed = 0, failed = 0;
  try {
    if (shot) return await screenshot(browser, srv.url, client(srv.url));
    for (const t of tests) {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      const t0 = Date.now();
      try {
        await t.fn({ page, browser, api: client(srv.url), url: srv.url });
        assert(!errors.length, 'script errors on the page: ' + errors.join('; '));
        passed++;
        console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name}\n     ${e.stack || e}`);
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
    srv.stop();
  }
  console.log(`ui: ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

// A picture for the README: a few channels with events and a job.
async function screenshot(browser, url, api) {
  const chans = { orders: 14, emails: 3, 'reports': 0, 'webhooks.dead': 2 };
  for (const [ch, n] of Object.entries(chans)) {
    for (let i = 0; i < n; i++) {
      await api('POST', `/${ch}/events`, { data: JSON.stringify({ order: 1000 + i, customer: 'c' + (i * 37 % 100), total: (i * 13.5).toFixed(2) }) });
    }
  }
  await api('POST', '/emails/events', { data: 'welcome mail for user 42', publishIn: '10m' });
  await api('POST', '/reports/jobs', { name: 'nightly', cronDef: 'CRON_TZ=Europe/Berlin 0 2 * * *', data: 'build the nightly report', ttl: '1h' });
  await api('POST', '/orders/jobs', { name: 'reconcile', cronDef: '*/15 * * * *', data: 'reconcile payments' });
  const ids = (await api('GET', '/orders/events')).json.events.map((e) => e.eventID);
  for (const id of ids.slice(0, 3)) await api('PUT', `/orders/events/${id}`, { action: 'LOCK', ttl: '45s' });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url + '/ui/');
  await until(async () => (await page.locator('#channels-body tr').count()) === 4, 'the channels');
  await new Promise((r) => setTimeout(r, 2500)); // one refresh, so rates show
  await page.goto(url + '/ui/#/c/orders');
  await until(async () => (await page.locator('#events-body tr[data-event]').count()) > 5, 'the events');
  await until(() => page.locator('tr[data-job="reconcile"]').count(), 'the job');
  await page.screenshot({ path: shot, fullPage: true });
  await page.goto(url + '/ui/');
  await new Promise((r) => setTimeout(r, 2500));
  await page.screenshot({ path: shot.replace(/\.png$/, '-overview.png') });
  console.log('wrote ' + shot);
}

await main();
