import { useEffect, useState } from 'preact/hooks';
import { listPainPoints, listProducts } from './api.js';
import { money, num, sumWindows } from './model.js';
import { Sparkline } from './Sparkline.jsx';
import { ErrorNote, Link } from './ui.jsx';

const OVERVIEW_DAYS = 28;

async function loadOverview() {
  const { products = [] } = await listProducts();
  return Promise.all(products.map(async (product) => {
    const points = await listPainPoints(product.productId);
    return {
      ...product,
      // The summaries give ARR per pain point only, so an account in two pain points counts twice.
      arr: points.reduce((sum, p) => sum + num(p.arrAtRiskCents), 0),
      daily: sumWindows(points, OVERVIEW_DAYS),
    };
  }));
}

export function Overview({ revision }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    loadOverview().then((r) => live && (setRows(r), setError(null)), (e) => live && setError(e));
    return () => (live = false);
  }, [revision]);
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Products</h1>
      <ErrorNote error={error} />
      {rows && (
        <table class="grid" data-testid="overview">
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col" class="n">Events</th>
              <th scope="col" class="n">Active pain points</th>
              <th scope="col" class="n">
                <abbr title="an account with several pain points counts once in each">ARR at risk, summed over pain points</abbr>
              </th>
              <th scope="col">Last {OVERVIEW_DAYS} days</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.productId} data-product={r.productId}>
                <td><Link href={`/products/${encodeURIComponent(r.productId)}`}>{r.productId}</Link></td>
                <td class="n">{num(r.eventCount).toLocaleString('en-US')}</td>
                <td class="n">{num(r.painPointCount).toLocaleString('en-US')}</td>
                <td class="n">{money(r.arr)}</td>
                <td><Sparkline counts={r.daily} label={`${r.productId}: events per day`} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && rows.length === 0 && <p>No feedback yet.</p>}
    </section>
  );
}
