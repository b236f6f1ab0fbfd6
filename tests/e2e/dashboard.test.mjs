// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core, against
// the `herald serve` that run.sh started (HERALD_URL, HERALD_TOKEN). Each test saves a screenshot
// of its page under HERALD_E2E_SHOTS.

import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {createServer} from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, test} from 'node:test';
import {chromium} from 'playwright-core';

const base = process.env.HERALD_URL;
const token = process.env.HERALD_TOKEN;
const shots = process.env.HERALD_E2E_SHOTS;
if (!base || !token || !shots) {
  throw new Error(
      'run through tests/e2e/run.sh: HERALD_URL, HERALD_TOKEN and HERALD_E2E_SHOTS are not set');
}

let context;
let profile;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'herald-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.HERALD_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'
    ],
    viewport: {width: 1280, height: 900},
    // A chromium that cannot start fails the run in half a minute, not after the default three.
    timeout: 30000,
  });
});

after(async () => {
  if (context) await context.close();
  if (profile) rmSync(profile, {recursive: true, force: true});
});

// --- the API, as another service would call it ---

async function call(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers:
        {Authorization: `Bearer ${token}`, ...(body ? {'Content-Type': 'application/json'} : {})},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */
  }
  return {status: response.status, json, text};
}

let nextEntity = 1000;

/** Posts one event; resolves with its event_id. */
async function postEvent(type = 'UserCreatedEvent', organization = 7) {
  nextEntity += 1;
  const event = type === 'UserCreatedEvent' ? {
    event_type: type,
    entity_type: 'User',
    entity_id: nextEntity,
    user_id: nextEntity,
    organization_id: organization
  } :
                                              {
                                                event_type: 'MatchScheduledEvent',
                                                entity_type: 'MatchSchedule',
                                                entity_id: nextEntity,
                                                user_id: 17,
                                                organization_id: organization,
                                                entity_data: null,
                                                tournament_id: 12,
                                                scheduled_time: '2026-12-10T19:00:00Z',
                                                participant_ids: [456, 457]
                                              };
  const reply = await call('POST', '/api/v1/events', event);
  assert.equal(reply.status, 201, `POST /api/v1/events: ${reply.text}`);
  return {id: reply.json.event_id, entity: nextEntity};
}

/** Polls `check` (async, truthy when done) until it holds or `seconds` pass. */
async function until(what, seconds, check) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${seconds} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function notifyAvailable() {
  return (await call('GET', '/api/v1/notification-kinds')).status !== 404;
}

// --- the page ---

async function openPage(width = 1280) {
  const page = await context.newPage();
  await page.setViewportSize({width, height: 900});
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text()))
      problems.push(message.text());
  });
  page.problems = problems;
  await page.goto(base + '/');
  return page;
}

async function signIn(page, value = token) {
  await page.getByLabel('API token').fill(value);
  await page.getByRole('button', {name: 'Sign in'}).click();
}

async function screenshot(page, name) {
  await page.screenshot({path: join(shots, `${name}.png`), fullPage: true});
}

async function finish(page, name) {
  await screenshot(page, name);
  assert.deepEqual(page.problems, [], 'the page logged no script errors');
  await page.close();
}

test(
    'signing in with a valid token shows the live page and signing out returns to the form',
    async () => {
      const page = await openPage();
      await signIn(page);
      await page.getByRole('heading', {name: 'Live', level: 1}).waitFor();
      assert.equal(await page.getByRole('navigation', {name: 'Pages'}).isVisible(), true);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.token')), token);
      await screenshot(page, 'live-signed-in');
      await page.getByRole('button', {name: 'Sign out'}).click();
      await page.getByRole('heading', {name: 'Sign in'}).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.token')), null);
      await finish(page, 'signed-out');
    });

test('a bad token shows a message saying it was not accepted', async () => {
  const page = await openPage();
  await signIn(page, 'hrld_not_a_real_token');
  const error = page.locator('#sign-in-error');
  await error.filter({hasText: 'not accepted'}).waitFor({timeout: 5000});
  assert.match(await error.textContent(), /invalid or revoked token/);
  assert.equal(await page.getByRole('navigation', {name: 'Pages'}).isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.token')), null);
  await finish(page, 'bad-token');
});

test(
    'events posted through the API appear in the live table within a second, newest first',
    async () => {
      const page = await openPage();
      await signIn(page);
      await page.getByRole('status').filter({hasText: 'Connected'}).waitFor({timeout: 10000});
      const first = await postEvent();
      const second = await postEvent();
      const posted = Date.now();
      await page.locator(`#live-rows a[href="#/events/${second.id}"]`).waitFor({timeout: 1000});
      await page.locator(`#live-rows a[href="#/events/${first.id}"]`).waitFor({timeout: 1000});
      assert.ok(Date.now() - posted <= 1000, 'both rows arrived within a second of the POSTs');
      const hrefs = await page.locator('#live-rows tr td:nth-child(2) a')
                        .evaluateAll((links) => links.map((a) => a.getAttribute('href')));
      assert.ok(
          hrefs.indexOf(`#/events/${second.id}`) < hrefs.indexOf(`#/events/${first.id}`),
          'the newer event is above the older');
      await finish(page, 'live');
    });

test('a token revoked while the page is open signs the page out with a message', async () => {
  const herald = process.env.HERALD_BIN;
  const db = process.env.HERALD_DB;
  const name = `revoked-${Date.now()}`;
  const created =
      execFileSync(herald, ['token', 'create', '--db', db, '--name', name, '--scopes', 'read'], {
        encoding: 'utf8',
      }).trim();
  assert.match(created, /^hrld_/);
  const page = await openPage();
  await signIn(page, created);
  await page.getByRole('heading', {name: 'Live', level: 1}).waitFor();
  execFileSync(herald, ['token', 'revoke', '--db', db, name], {encoding: 'utf8'});
  // The server caches a lookup briefly: wait until it refuses the token.
  await until('the server to refuse the revoked token', 10, async () => {
    const response =
        await fetch(`${base}/api/v1/catalog`, {headers: {Authorization: `Bearer ${created}`}});
    // Reading the body releases the connection, which would otherwise hold the process open.
    await response.arrayBuffer();
    return response.status === 401;
  });
  await page.getByRole('link', {name: 'Events'}).click();
  const error = page.locator('#sign-in-error');
  await error.filter({hasText: 'no longer accepts this token'}).waitFor({timeout: 5000});
  assert.equal(await page.getByRole('navigation', {name: 'Pages'}).isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.token')), null);
  await finish(page, 'revoked-token');
});

test('a type filter narrows the live table to that type', async () => {
  const page = await openPage();
  await signIn(page);
  await page.getByRole('status').filter({hasText: 'Connected'}).waitFor({timeout: 10000});
  const user = await postEvent('UserCreatedEvent');
  const match = await postEvent('MatchScheduledEvent');
  await page.locator(`#live-rows a[href="#/events/${match.id}"]`).waitFor({timeout: 2000});
  await page.locator(`#live-rows a[href="#/events/${user.id}"]`).waitFor({timeout: 2000});
  await page.getByLabel('Type', {exact: true}).selectOption('MatchScheduledEvent');
  await page.locator(`#live-rows a[href="#/events/${user.id}"]`)
      .waitFor({state: 'detached', timeout: 2000});
  const types =
      await page.locator('#live-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.type));
  assert.ok(types.length >= 1);
  assert.deepEqual([...new Set(types)], ['MatchScheduledEvent']);
  // An event of another type arriving while filtered stays out.
  const later = await postEvent('UserCreatedEvent');
  const more = await postEvent('MatchScheduledEvent');
  await page.locator(`#live-rows a[href="#/events/${more.id}"]`).waitFor({timeout: 2000});
  assert.equal(await page.locator(`#live-rows a[href="#/events/${later.id}"]`).count(), 0);
  await finish(page, 'live-filtered');
});

test('pausing holds the live table still and resuming shows what arrived meanwhile', async () => {
  const page = await openPage();
  await signIn(page);
  await page.getByRole('status').filter({hasText: 'Connected'}).waitFor({timeout: 10000});
  await page.getByRole('button', {name: 'Pause'}).click();
  assert.equal(
      await page.getByRole('button', {name: 'Resume'}).getAttribute('aria-pressed'), 'true');
  const held = await postEvent();
  await page.getByRole('status').filter({hasText: '1 new event(s) waiting'}).waitFor({
    timeout: 2000
  });
  assert.equal(await page.locator(`#live-rows a[href="#/events/${held.id}"]`).count(), 0);
  await page.getByRole('button', {name: 'Resume'}).click();
  await page.locator(`#live-rows a[href="#/events/${held.id}"]`).waitFor({timeout: 2000});
  await finish(page, 'live-resumed');
});

test('signing in works from the keyboard alone', async () => {
  const page = await openPage();
  await page.getByRole('heading', {name: 'Sign in'}).waitFor();
  // The form takes the focus when the page opens: type the token and press Enter.
  await until(
      'the token field to have the focus', 5,
      () => page.evaluate(() => document.activeElement?.id === 'token'));
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', {name: 'Live', level: 1}).waitFor();
  // Tab reaches the navigation, and Enter follows a link.
  let focused = '';
  for (let i = 0; i < 10 && focused !== 'Events'; i += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
  }
  assert.equal(focused, 'Events');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', {name: 'Events', level: 1}).waitFor();
  await finish(page, 'keyboard');
});

test('the audit page exports the matching records as CSV', async () => {
  const {id, entity} = await postEvent();
  await until(
      'the audit record of the posted event', 15,
      async () => (await call('GET', `/api/v1/audit?entity_type=User&entity_id=${entity}`))
                      .json?.records?.length > 0);
  const page = await openPage();
  await signIn(page);
  await page.getByRole('link', {name: 'Audit'}).click();
  await page.getByLabel('Entity type').fill('User');
  await page.getByLabel('Entity id').fill(String(entity));
  const [download] = await Promise.all([
    page.waitForEvent('download', {timeout: 5000}),
    page.getByRole('button', {name: 'Export CSV'}).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'audit.csv');
  const file = join(shots, 'audit-export.csv');
  await download.saveAs(file);
  const lines = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  assert.match(lines[0], /^position,event_id,/);
  assert.equal(lines.length, 2, 'a header and the one matching record');
  assert.ok(lines[1].includes(id));
  await finish(page, 'audit-export');
});

test('the events page finds an event by its entity and shows its JSON', async () => {
  const {id, entity} = await postEvent();
  const page = await openPage();
  await signIn(page);
  await page.getByRole('link', {name: 'Events'}).click();
  await page.getByRole('heading', {name: 'Events', level: 1}).waitFor();
  await page.getByLabel('Entity type').fill('User');
  await page.getByLabel('Entity id').fill(String(entity));
  await page.getByRole('button', {name: 'Search'}).click();
  // The summary changes once the search (not the page's first, unfiltered list) has answered.
  await page.getByRole('status').filter({hasText: 'Page 1: 1 event(s).'}).waitFor({timeout: 5000});
  const link = page.locator(`#event-rows a[href="#/events/${id}"]`);
  await link.waitFor({timeout: 5000});
  assert.equal(await page.locator('#event-rows tr').count(), 1);
  await link.click();
  const json = page.locator('#event-json');
  await json.waitFor({timeout: 5000});
  const shown = JSON.parse(await json.textContent());
  assert.equal(shown.event.event_id, id);
  assert.equal(shown.event.entity_id, entity);
  await finish(page, 'event-detail');
});

test('audit search finds an event\'s record and verify shows the chain intact', async () => {
  const {id, entity} = await postEvent();
  // The audit consumer records the event asynchronously: wait for it through the API.
  await until(
      'the audit record of the posted event', 15,
      async () => (await call('GET', `/api/v1/audit?entity_type=User&entity_id=${entity}`))
                      .json?.records?.length > 0);
  const page = await openPage();
  await signIn(page);
  await page.getByRole('link', {name: 'Audit'}).click();
  await page.getByRole('heading', {name: 'Audit', level: 1}).waitFor();
  await page.getByLabel('Entity type').fill('User');
  await page.getByLabel('Entity id').fill(String(entity));
  await page.getByRole('button', {name: 'Search'}).click();
  // The summary changes once the search (not the page's first, unfiltered list) has answered.
  await page.getByRole('status').filter({hasText: '1 matching record(s); page 1.'}).waitFor({
    timeout: 5000
  });
  await page.locator(`#audit-rows a[href="#/events/${id}"]`).waitFor({timeout: 5000});
  assert.equal(await page.locator('#audit-rows tr').count(), 1);
  await page.getByRole('button', {name: 'Verify chain'}).click();
  const chain = page.locator('#chain-status');
  await chain.filter({hasText: 'Chain intact'}).waitFor({timeout: 10000});
  assert.equal(await chain.getAttribute('class'), 'ok');
  await finish(page, 'audit');
});

test('the live page is readable at a phone\'s width', async () => {
  const page = await openPage(390);
  await signIn(page);
  await page.getByRole('heading', {name: 'Live', level: 1}).waitFor();
  const overflow =
      await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
  await finish(page, 'live-phone');
});

// --- notifications: these need the notification API (docs/notifications.md) ---

const noNotifyApi =
    'the server answers 404 for /api/v1/notification-kinds: the notification API is not merged yet';

test('a dead delivery is re-sent from the deliveries page', async (t) => {
  if (!(await notifyAvailable())) return t.skip(noNotifyApi);
  // A webhook receiver on loopback that asks to be retried in two days: more than the longest
  // Retry-After a delivery honours, so the first attempt leaves the delivery dead. The server must
  // allow loopback targets for this (run.sh passes --webhook-allow-private).
  let received = 0;
  const receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received += 1;
      response.writeHead(429, {'Retry-After': '172800', 'Content-Type': 'text/plain'});
      response.end('come back in two days');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const endpoint = await call('POST', '/api/v1/webhooks', {
      organization_id: 7,
      url: `http://127.0.0.1:${receiver.address().port}/hook`,
      event_types: ['UserCreatedEvent'],
    });
    assert.equal(endpoint.status, 201, `POST /api/v1/webhooks: ${endpoint.text}`);
    await postEvent('UserCreatedEvent', 7);
    const dead = await until('a dead webhook delivery', 30, async () => {
      const list = await call('GET', '/api/v1/deliveries?status=dead&channel=webhook&limit=1');
      return list.json?.items?.[0];
    });
    const attemptsBefore = received;
    const page = await openPage();
    await signIn(page);
    await page.getByRole('link', {name: 'Deliveries'}).click();
    await page.getByRole('heading', {name: 'Deliveries', level: 1}).waitFor();
    await page.getByRole('button', {name: `Re-send delivery ${dead.id}`}).click();
    await page.getByRole('heading', {name: new RegExp(`^Delivery ${dead.id}:`)}).waitFor();
    // The re-sent delivery is tried again: the receiver sees another request.
    await until(
        'the re-sent delivery to reach the receiver', 15, async () => received > attemptsBefore);
    const detail = (await call('GET', `/api/v1/deliveries/${dead.id}`)).json;
    assert.ok(
        detail.attempts.length >= 2,
        `delivery ${dead.id} has ${detail.attempts.length} attempt(s)`);
    await finish(page, 'deliveries');
  } finally {
    receiver.close();
  }
});

test('marking a notification read changes the unread badge', async (t) => {
  if (!(await notifyAvailable())) return t.skip(noNotifyApi);
  const user = process.env.HERALD_E2E_INBOX_USER || '456';
  // A match scheduled with user 456 among its participants notifies them in the app.
  await postEvent('MatchScheduledEvent', 789);
  const before = await until('an unread notification for the participant', 30, async () => {
    const count = await call('GET', `/api/v1/users/${user}/inbox/unread-count`);
    return count.json?.unread > 0 ? count.json.unread : 0;
  });
  const page = await openPage();
  await signIn(page);
  await page.getByRole('link', {name: /My notifications/}).click();
  await page.getByLabel('User id (empty: the token\'s user)').fill(user);
  await page.getByRole('button', {name: 'Show'}).first().click();
  const badge = page.locator('#unread-badge');
  await badge.filter({hasText: String(before)}).waitFor({timeout: 5000});
  await page.locator('#inbox-rows tr.unread')
      .first()
      .getByRole('button', {name: /Mark .* read/})
      .click();
  await badge.filter({hasText: new RegExp(`^${before - 1}$`)})
      .or(page.locator('#unread-badge[hidden]'))
      .first()
      .waitFor({timeout: 5000});
  const after = await call('GET', `/api/v1/users/${user}/inbox/unread-count`);
  assert.equal(after.json.unread, before - 1);
  await finish(page, 'inbox');
});

test('a preference switched on the page is seen through the API', async (t) => {
  if (!(await notifyAvailable())) return t.skip(noNotifyApi);
  const user = process.env.HERALD_E2E_INBOX_USER || '456';
  const kinds = (await call('GET', '/api/v1/notification-kinds')).json;
  const kind = kinds.kinds.find((k) => !k.critical) || kinds.kinds[0];
  const channel = kinds.channels.find((c) => c !== 'in_app' || !kind.critical);
  const page = await openPage();
  await signIn(page);
  await page.getByRole('link', {name: /My notifications/}).click();
  await page.getByLabel('User id (empty: the token\'s user)').fill(user);
  await page.getByRole('button', {name: 'Show'}).first().click();
  const box = page.getByRole('checkbox', {name: `${kind.name} by ${channel}`, exact: true});
  await box.waitFor({timeout: 5000});
  const wanted = !(await box.isChecked());
  await box.setChecked(wanted);
  await page.getByRole('button', {name: 'Save preferences'}).click();
  await page.getByRole('status').filter({hasText: 'Saved'}).waitFor({timeout: 5000});
  const prefs = (await call('GET', `/api/v1/users/${user}/preferences`)).json;
  const rule = prefs.rules.find(
      (r) => r.kind === kind.name && r.channel === channel && r.organization_id === null);
  assert.ok(rule, `a rule for ${kind.name} by ${channel} was stored`);
  assert.equal(rule.enabled, wanted);
  await finish(page, 'preferences');
});
