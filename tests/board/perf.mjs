// Browser-measured figures: the time until a board of 5,000 pain points is interactive, and the
// bundle's gzipped size. The API answers for a made-up product through request interception,
// so the figure is the board's own cost (fetching 10 pages of 500, sorting, rendering).
import assert from 'node:assert/strict';

const PAIN_POINTS = 5000;
const BUNDLE_LIMIT_BYTES = 300 * 1024;

function syntheticPainPoints(n) {
  const out = [];
  for (let i = 0; i < n; ++i) {
    const daily = Array.from({ length: 28 }, (_, d) => String((i * 7 + d * 3) % 11));
    out.push({
      id: `pp-${String(i).padStart(5, '0')}`, productId: 'big', status: 'STATUS_ACTIVE',
      version: '1', label: `synthetic pain point ${i}`, keywords: ['alpha', `k${i % 97}`],
      exemplars: [], eventCount: String(1 + (i * 37) % 500), accountCount: String(1 + (i * 13) % 90),
      sourceCounts: [{ source: 'SOURCE_SUPPORT', count: String(1 + i % 5) }],
      arrAtRiskCents: String((i * 7919) % 10_000_000), firstSeen: '2026-10-01T00:00:00Z',
      lastSeen: `2026-10-${String(1 + i % 28).padStart(2, '0')}T12:00:00Z`, dailyCounts: daily,
      trend: ((i % 13) - 6) / 10, severity: 20 - (i % 1000) / 50,
    });
  }
  return out;
}

async function bundleGzipBytes(url) {
  const index = await (await fetch(url + '/')).text();
  const assets = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  let total = 0;
  for (const asset of assets) {
    const response = await fetch(url + asset, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(response.headers.get('content-encoding'), 'gzip', asset);
    assert.match(response.headers.get('cache-control'), /immutable/, asset);
    // fetch() decompresses; the bytes on the wire are the Content-Length.
    total += Number(response.headers.get('content-length'));
    await response.arrayBuffer();
  }
  return { total, assets };
}

export async function perfCheck(browser, url, log) {
  const all = syntheticPainPoints(PAIN_POINTS);
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  await context.route('**/v1/**', (route) => {
    const u = new URL(route.request().url());
    if (u.pathname === '/v1/products') {
      return route.fulfill({ json: { products: [{ productId: 'big', eventCount: '1',
        painPointCount: String(PAIN_POINTS) }] } });
    }
    if (u.pathname === '/v1/products/big/pain-points') {
      const start = Number(u.searchParams.get('cursor') || 0);
      const end = Math.min(all.length, start + 500);
      return route.fulfill({ json: { painPoints: all.slice(start, end),
        nextCursor: end < all.length ? String(end) : '' } });
    }
    return route.fulfill({ status: 400, json: { error: { code: 'bad_json', message: 'x' } } });
  });
  const page = await context.newPage();
  await page.goto(url + '/products/big');
  await page.waitForSelector(`[data-testid=count]:has-text("of ${PAIN_POINTS}")`);
  const interactive = await page.evaluate(() => performance.now());
  // The last page's response end: what is left after it is the board's own work (parse, sort,
  // render), the rest is the ten requests through Playwright's interception.
  const lastResponse = await page.evaluate(() => Math.max(...performance
    .getEntriesByType('resource').filter((e) => e.name.includes('/pain-points'))
    .map((e) => e.responseEnd)));
  const sortStart = await page.evaluate(() => performance.now());
  await page.selectOption('[data-testid=sort]', 'arr');
  await page.waitForFunction(() => {
    const first = document.querySelector('[data-testid=board] tbody tr');
    return first && first.dataset.id !== 'pp-00000';
  });
  const sorted = (await page.evaluate(() => performance.now())) - sortStart;
  await context.close();
  const bundle = await bundleGzipBytes(url);
  log(`perf: board of ${PAIN_POINTS} pain points interactive ${interactive.toFixed(0)} ms after ` +
    `navigation start (target < 1000 ms; last of its 10 API pages received at ` +
    `${lastResponse.toFixed(0)} ms, so ${(interactive - lastResponse).toFixed(0)} ms of sorting and ` +
    `rendering); re-sort by ARR ${sorted.toFixed(0)} ms`);
  log(`perf: bundle ${bundle.assets.length} assets, ${(bundle.total / 1024).toFixed(1)} KB gzipped ` +
    `(limit ${BUNDLE_LIMIT_BYTES / 1024} KB)`);
  assert.ok(bundle.total <= BUNDLE_LIMIT_BYTES, `bundle ${bundle.total} bytes gzipped`);
}
