// The board in Debian's chromium (playwright-core), against a live `painpoint serve` that
// board_test.py started with sample data. Writes screenshots under ARTIFACTS and, for
// board_test.py's checks of painpoint.summaries, what the UI curated to ARTIFACTS/curated.json.
//
// usage: node board.spec.mjs  (environment: BOARD_URL, BOARD_DIR, ARTIFACTS, READ_TOKEN,
//                              WRITE_TOKEN)
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { perfCheck } from './perf.mjs';

const { BOARD_URL, BOARD_DIR, ARTIFACTS, READ_TOKEN, WRITE_TOKEN } = process.env;
const require = createRequire(path.join(BOARD_DIR, 'package.json'));
const { chromium } = require('playwright-core');
const axe = require('axe-core');

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const SORTS = ['severity', 'events', 'accounts', 'arr', 'trend', 'recent'];

function log(...args) {
  console.log(`[${(performance.now() / 1000).toFixed(2).padStart(7)}]`, ...args);
}

async function api(p, { token = WRITE_TOKEN, method = 'GET', body } = {}) {
  const response = await fetch(BOARD_URL + p, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc = await response.json();
  assert.ok(response.ok, `${method} ${p}: ${response.status} ${JSON.stringify(doc)}`);
  return doc;
}

async function apiPainPoints(product, sort) {
  const ids = [];
  let cursor = '';
  do {
    const page = await api(`/v1/products/${product}/pain-points?sort=${sort}&limit=500` +
      (cursor ? `&cursor=${cursor}` : ''));
    ids.push(...(page.painPoints || []).map((p) => p.id));
    cursor = page.nextCursor || '';
  } while (cursor);
  return ids;
}

async function waitFor(what, fn, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

const rowIds = (page) =>
  page.$$eval('[data-testid=board] tbody tr', (rows) => rows.map((r) => r.dataset.id));

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

// axe-core in the page (evaluated through the debugging protocol, so the page's CSP stays on).
async function checkAccessibility(page, view) {
  await page.evaluate(axe.source);
  const result = await page.evaluate(() => window.axe.run(document, {
    resultTypes: ['violations'],
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  log(`axe ${view}: ${result.violations.length} violations, ${bad.length} serious or critical`);
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(' ')}`), [],
    `${view}: serious or critical accessibility violations`);
}

async function useToken(page, token) {
  await page.fill('#token', token);
  await page.click('text=Use token');
}

async function checkWrongToken(page) {
  await page.goto(BOARD_URL + '/');
  await useToken(page, 'not-the-token');
  const error = await page.waitForSelector('[data-testid=error]:has-text("not valid")');
  const text = await error.textContent();
  assert.match(text, /the bearer token is not valid for this endpoint/, text);
  assert.ok(!page.url().includes('not-the-token'), 'the token never goes into the URL');
  await shot(page, 'wrong-token');
  log('wrong token: the API error is shown:', text);
}

async function checkOverview(page) {
  const { products } = await api('/v1/products');
  await page.waitForSelector('[data-testid=overview] tbody tr');
  const shown = await page.$$eval('[data-testid=overview] tbody tr', (rows) =>
    rows.map((r) => r.dataset.product));
  assert.deepEqual(shown, products.map((p) => p.productId));
  await shot(page, 'overview');
  await checkAccessibility(page, 'overview');
  log('overview lists', shown.length, 'products');
  return products;
}

async function checkSorts(page, product) {
  await page.goto(`${BOARD_URL}/products/${product}`);
  await page.waitForSelector('[data-testid=board] tbody tr');
  for (const sort of SORTS) {
    const expected = (await apiPainPoints(product, sort)).slice(0, 100);
    await page.selectOption('[data-testid=sort]', sort);
    await waitFor(`board sorted by ${sort}`, async () =>
      JSON.stringify(await rowIds(page)) === JSON.stringify(expected));
    log(`sort=${sort}: board rows = API order (${expected.length} pain points)`);
  }
  await page.selectOption('[data-testid=sort]', 'severity');
  await shot(page, 'board');
  await checkAccessibility(page, 'board');
}

async function checkFilterAndExport(page, product) {
  const first = await api(`/v1/products/${product}/pain-points?limit=1`);
  const keyword = first.painPoints[0].keywords[0];
  await page.fill('[data-testid=filter]', keyword);
  const ids = await waitFor('filtered rows', async () => {
    const now = await rowIds(page);
    return now.includes(first.painPoints[0].id) && now;
  });
  const download = page.waitForEvent('download');
  await page.click('text=Export CSV');
  const file = path.join(ARTIFACTS, `${product}.csv`);
  await (await download).saveAs(file);
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync(file, 'utf8').trim().split('\r\n');
  assert.equal(lines[0].split(',')[0], 'id');
  assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), ids);
  log(`filter "${keyword}": ${ids.length} rows; CSV export has the same ${ids.length} rows`);
  await page.fill('[data-testid=filter]', '');
}

async function checkKeyboard(page, product) {
  await page.goto(`${BOARD_URL}/products/${product}`);
  await page.waitForSelector('[data-testid=board] tbody tr');
  for (let i = 0; i < 40; ++i) {
    await page.keyboard.press('Tab');
    const inRow = await page.evaluate(() =>
      document.activeElement?.closest('[data-testid=board] tbody tr') !== null &&
      document.activeElement?.tagName === 'A');
    if (inRow) break;
  }
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=exemplars]');
  assert.match(page.url(), /\/pain-points\//);
  log('keyboard: Tab reaches the first row, Enter opens its page');
}

async function checkPainPointPage(page, id) {
  const summary = await api(`/v1/pain-points/${id}`);
  const events = await api(`/v1/pain-points/${id}/events?limit=25`);
  await page.goto(`${BOARD_URL}/pain-points/${id}`);
  await page.waitForSelector('[data-testid=events] li');
  const exemplars = await page.$$eval('[data-testid=exemplars] li', (l) => l.map((x) => x.textContent));
  assert.deepEqual(exemplars, summary.exemplars.map((x) => x.text));
  const shown = await page.$$eval('[data-testid=events] li', (l) => l.map((x) => x.dataset.event));
  assert.deepEqual(shown, events.events.map((e) => e.eventId));
  const links = await page.$$eval('[data-testid=events] li a', (l) => l.map((a) => a.href));
  const urls = events.events.map((e) => e.externalUrl).filter(Boolean);
  assert.deepEqual(links, urls);
  await shot(page, 'pain-point');
  await checkAccessibility(page, 'pain point');
  log(`pain point ${id}: ${exemplars.length} exemplars, ${shown.length} events (${links.length} links)`);
}

async function checkReadOnly(page, id) {
  await useToken(page, READ_TOKEN);
  await page.waitForSelector('text=read-only');
  await page.goto(`${BOARD_URL}/pain-points/${id}`);
  await page.waitForSelector('[data-testid=events] li');
  assert.equal(await page.$('[data-testid=rename]'), null, 'no curation with the read token');
  assert.equal(await page.$('[data-testid=events] input[type=checkbox]'), null);
  await shot(page, 'pain-point-read-only');
  await checkAccessibility(page, 'pain point, read-only');
  log('read token: the pain-point page is read-only');
}

async function curate(page, product) {
  const ids = await apiPainPoints(product, 'severity');
  assert.ok(ids.length >= 3, `need three pain points in ${product}, got ${ids.length}`);
  const [a, b] = ids;
  const label = 'Renamed on the board';
  await page.goto(`${BOARD_URL}/pain-points/${a}`);
  // A refused rename shows the API's own message (and changes nothing).
  const tooLong = 'x'.repeat(201);
  const refused = await fetch(`${BOARD_URL}/v1/pain-points/${a}/rename`, { method: 'POST',
    headers: { Authorization: 'Bearer ' + WRITE_TOKEN }, body: JSON.stringify({ label: tooLong }) });
  const { error } = await refused.json();
  assert.equal(refused.status, 422);
  await page.fill('#rename-label', tooLong);
  await page.click('[data-testid=rename] button');
  const note = await page.waitForSelector('[data-testid=rename] [data-testid=error]');
  assert.equal(await note.textContent(), `${error.message} (422 ${error.code})`);
  log('refused rename: the page shows', JSON.stringify(await note.textContent()));
  await page.fill('#rename-label', label);
  await page.click('[data-testid=rename] button');
  await page.waitForSelector(`[data-testid=label]:has-text("${label}")`);
  assert.equal((await api(`/v1/pain-points/${a}`)).label, label);
  await shot(page, 'curation');

  const target = await api(`/v1/pain-points/${a}`);
  await page.goto(`${BOARD_URL}/pain-points/${b}`);
  await page.fill('#merge-search', target.keywords[0]);
  await waitFor('merge target offered', () => page.$(`#merge-target option[value="${a}"]`));
  await page.selectOption('#merge-target', a);
  await page.click('[data-testid=merge] button');
  await page.waitForURL(`**/pain-points/${a}`);
  await page.waitForSelector(`[data-testid=merged]:has-text("${b}")`);
  assert.equal((await api(`/v1/pain-points/${b}`)).id, a);

  await page.waitForSelector('[data-testid=events] li input[type=checkbox]');
  const boxes = await page.$$('[data-testid=events] li input[type=checkbox]');
  const picked = [];
  for (const box of boxes.slice(0, 2)) {
    await box.check();
    picked.push(await box.evaluate((el) => el.closest('li').dataset.event));
  }
  await page.click('[data-testid=split] button');
  await page.waitForURL((url) => !url.pathname.endsWith('/' + a));
  const split = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  await page.waitForSelector('[data-testid=events] li');
  const moved = (await api(`/v1/pain-points/${split}/events`)).events.map((e) => e.eventId);
  assert.deepEqual(moved.sort(), picked.sort());

  await page.goto(`${BOARD_URL}/products/${product}`);
  await page.waitForSelector(`[data-testid=board] tr[data-id="${split}"]`);
  const board = await rowIds(page);
  assert.ok(!board.includes(b), 'the merged pain point left the board');
  assert.ok(board.includes(a) && board.includes(split));
  const labelShown = await page.textContent(`[data-testid=board] tr[data-id="${a}"] a`);
  assert.equal(labelShown, label);
  log(`curated through the UI: renamed ${a}, merged ${b} into it, split ${picked.length} events into ${split}`);
  return { product, renamed: a, label, merged: b, into: a, split, split_events: picked };
}

// A new batch through POST /v1/feedback while the board is open: its pain point appears, marked.
async function checkLive(page, product) {
  await page.goto(`${BOARD_URL}/products/${product}`);
  await page.waitForSelector('[data-testid=board] tbody tr');
  await new Promise((r) => setTimeout(r, 1500));
  const before = new Set(await rowIds(page));
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const texts = ['the printer integration forgets the paper size', 'printer integration loses the paper size setting',
    'paper size resets in the printer integration', 'printer integration paper size is never saved'];
  const events = [];
  for (let i = 0; i < 12; ++i) {
    events.push({ eventId: `live-${i}`, productId: product, source: 'SOURCE_SUPPORT',
      text: texts[i % texts.length], occurredAt: now, accountId: `live-account-${i}`,
      externalUrl: `https://support.example.com/tickets/live-${i}` });
  }
  await api('/v1/feedback', { method: 'POST', body: events });
  const accepted = performance.now();
  const marked = await waitFor('a new or updated pain point marked on the board', async () => {
    const ids = await page.$$eval('[data-testid=board] tbody tr:has([data-testid=mark])',
      (rows) => rows.map((r) => r.dataset.id));
    return ids.length > 0 && ids;
  }, 15_000);
  const seconds = (performance.now() - accepted) / 1000;
  await shot(page, 'live');
  const fresh = marked.filter((id) => !before.has(id));
  log(`live: ${marked.length} marked row(s) (${fresh.length} new) ${seconds.toFixed(2)} s after the ` +
    'POST was acknowledged (target: within 3 s)');
  // Its page links each member event's external_url.
  const holder = await waitFor('the pain point holding live-0', async () => {
    for (const id of marked) {
      const { events: members } = await api(`/v1/pain-points/${id}/events?limit=500`);
      if (members.some((e) => e.eventId === 'live-0')) return id;
    }
    return null;
  });
  await page.goto(`${BOARD_URL}/pain-points/${holder}`);
  const link = await page.waitForSelector('[data-testid=events] li[data-event="live-0"] a');
  assert.equal(await link.getAttribute('href'), 'https://support.example.com/tickets/live-0');
  return seconds;
}

// A rename by someone else (straight through the API) changes no count: the open board still
// shows the new label, marked as updated.
async function checkLiveRename(page, product, curated) {
  await page.goto(`${BOARD_URL}/products/${product}`);
  await page.waitForSelector('[data-testid=board] tbody tr');
  await new Promise((r) => setTimeout(r, 1500));
  // Not one the UI curated: the summaries check after this test expects their labels.
  const curatedIds = [curated.renamed, curated.merged, curated.split];
  const target = (await apiPainPoints(product, 'severity')).find((id) => !curatedIds.includes(id));
  const label = `renamed elsewhere ${Date.now()}`;
  await api(`/v1/pain-points/${target}/rename`, { method: 'POST', body: { label } });
  const renamed = performance.now();
  await waitFor('the rename on the open board, marked', async () => {
    const row = await page.$(`[data-testid=board] tbody tr[data-id="${target}"]`);
    if (!row) return false;
    const text = await row.textContent();
    return text.includes(label) && (await row.$('[data-testid=mark]')) !== null;
  }, 15_000);
  log(`live rename: shown and marked ${((performance.now() - renamed) / 1000).toFixed(2)} s after ` +
    'the API answered');
}

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 },
      acceptDownloads: true });
    const page = await context.newPage();
    const external = [];
    page.on('request', (r) => { if (!r.url().startsWith(BOARD_URL)) external.push(r.url()); });
    const polls = {};
    page.on('response', (r) => {
      if (new URL(r.url()).pathname === '/v1/products') polls[r.status()] = (polls[r.status()] || 0) + 1;
    });
    await checkWrongToken(page);
    await useToken(page, WRITE_TOKEN);
    await page.waitForSelector('text=can curate');
    const products = await checkOverview(page);
    const product = products[0].productId;
    await checkSorts(page, product);
    await checkFilterAndExport(page, product);
    await checkKeyboard(page, product);
    const [top] = await apiPainPoints(product, 'severity');
    await checkPainPointPage(page, top);
    const curated = await curate(page, product);
    const liveSeconds = await checkLive(page, product);
    await checkLiveRename(page, product, curated);
    await checkReadOnly(page, top);
    assert.deepEqual(external, [], 'the board loads nothing from elsewhere');
    log('GET /v1/products answers seen by the page, by status:', JSON.stringify(polls));
    assert.ok(polls[304] > 0, 'the live poll revalidates with If-None-Match');
    writeFileSync(path.join(ARTIFACTS, 'curated.json'), JSON.stringify({ ...curated, liveSeconds }));
    await perfCheck(browser, BOARD_URL, log);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
