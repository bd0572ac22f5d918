// Pure helpers over PainPointSummary JSON (proto3 JSON: int64 fields arrive as strings).

export const num = (v) => Number(v || 0);

// RFC 3339 -> microseconds since the epoch, so "recent" orders exactly as the server does.
export function micros(timestamp) {
  if (!timestamp) return 0;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(timestamp);
  if (!m) return Date.parse(timestamp) * 1000;
  const fraction = (m[2] || '').padEnd(6, '0').slice(0, 6);
  return Date.parse(m[1] + m[3]) * 1000 + Number(fraction);
}

// The same orders as GET /v1/products/{p}/pain-points?sort=...: descending, ties by id.
export const SORTS = {
  severity: { label: 'Severity', key: (p) => p.severity },
  events: { label: 'Events', key: (p) => num(p.eventCount) },
  accounts: { label: 'Accounts', key: (p) => num(p.accountCount) },
  arr: { label: 'ARR at risk', key: (p) => num(p.arrAtRiskCents) },
  trend: { label: 'Trend', key: (p) => p.trend },
  recent: { label: 'Recent', key: (p) => micros(p.lastSeen) },
};

export function sortPainPoints(list, sort) {
  const key = SORTS[sort].key;
  return list
    .map((p) => [key(p), p])
    .sort((a, b) => b[0] - a[0] || (a[1].id < b[1].id ? -1 : a[1].id > b[1].id ? 1 : 0))
    .map(([, p]) => p);
}

export const SOURCES = [
  ['SOURCE_SUPPORT', 'Support'],
  ['SOURCE_SALES', 'Sales'],
  ['SOURCE_CUSTOMER', 'Customer'],
];

export function sourceCount(p, source) {
  const entry = (p.sourceCounts || []).find((s) => s.source === source);
  return entry ? num(entry.count) : 0;
}

export function matchesText(p, text) {
  if (!text) return true;
  const needle = text.toLowerCase();
  return (p.label || '').toLowerCase().includes(needle) ||
    (p.keywords || []).some((k) => k.toLowerCase().includes(needle));
}

const DAY_MS = 86_400_000;
const dayOf = (timestamp) => Math.floor(micros(timestamp) / 1000 / DAY_MS);

// The last `days` daily counts ending on `endDay` (days since the epoch); daily_counts ends on
// the day of last_seen.
export function dailyWindow(p, endDay, days) {
  const out = new Array(days).fill(0);
  const counts = (p.dailyCounts || []).map(num);
  const last = dayOf(p.lastSeen);
  counts.forEach((count, i) => {
    const at = days - 1 - (endDay - (last - (counts.length - 1 - i)));
    if (at >= 0 && at < days) out[at] += count;
  });
  return out;
}

export function latestDay(list) {
  return list.reduce((max, p) => Math.max(max, dayOf(p.lastSeen)), 0);
}

export function ownWindow(p) {
  return (p.dailyCounts || []).map(num);
}

export function sumWindows(list, days) {
  const end = latestDay(list);
  const total = new Array(days).fill(0);
  for (const p of list) dailyWindow(p, end, days).forEach((c, i) => (total[i] += c));
  return total;
}

// The terms of aggregator/include/painpoint/aggregator/severity.h's formula; the decay factor is
// what is left of the published severity after them.
export function severityParts(p) {
  const events = Math.log1p(num(p.eventCount));
  const accounts = 1.5 * Math.log1p(num(p.accountCount));
  const arr = 0.5 * Math.log1p(num(p.arrAtRiskCents) / 100 / 1000);
  const trend = Math.max(0, p.trend || 0);
  const raw = events + accounts + arr + trend;
  return { events, accounts, arr, trend, raw, decay: raw > 0 ? p.severity / raw : 0 };
}

export const money = (cents) =>
  '$' + Math.round(num(cents) / 100).toLocaleString('en-US');

export const date = (timestamp) => (timestamp ? timestamp.slice(0, 10) : '');

export const fixed = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '');

function csvCell(value) {
  const text = String(value ?? '');
  return /[",\n\r]/.test(text) ? '"' + text.replaceAll('"', '""') + '"' : text;
}

export function boardCsv(list) {
  const header = ['id', 'label', 'keywords', 'severity', 'events', 'accounts',
    'arr_at_risk_usd', 'support', 'sales', 'customer', 'trend', 'first_seen', 'last_seen'];
  const rows = list.map((p) => [p.id, p.label, (p.keywords || []).join(' '), p.severity,
    num(p.eventCount), num(p.accountCount), num(p.arrAtRiskCents) / 100,
    ...SOURCES.map(([s]) => sourceCount(p, s)), p.trend, p.firstSeen, p.lastSeen]);
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
