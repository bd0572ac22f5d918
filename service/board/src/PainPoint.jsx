import { useEffect, useState } from 'preact/hooks';
import { getMergedIds, getPainPoint, listEvents } from './api.js';
import { date, fixed, money, num, ownWindow, severityParts, SOURCES, sourceCount } from './model.js';
import { DailyChart } from './Sparkline.jsx';
import { Curation, Split } from './Curation.jsx';
import { ErrorNote, Link, navigate } from "./ui.jsx";

function SeverityParts({ p }) {
  const parts = severityParts(p);
  const rows = [
    ['ln(1 + events)', parts.events],
    ['1.5 × ln(1 + accounts)', parts.accounts],
    ['0.5 × ln(1 + ARR in $1,000s)', parts.arr],
    ['max(0, trend)', parts.trend],
  ];
  return (
    <table class="grid compact" data-testid="severity">
      <caption>Severity {fixed(p.severity)}</caption>
      <tbody>
        {rows.map(([name, value]) => <tr><th scope="row">{name}</th><td class="n">{fixed(value)}</td></tr>)}
        <tr><th scope="row">sum</th><td class="n">{fixed(parts.raw)}</td></tr>
        <tr><th scope="row">× recency decay</th><td class="n">{fixed(parts.decay, 3)}</td></tr>
      </tbody>
    </table>
  );
}

function Events({ id, canWrite, onSplit, reload }) {
  const [stack, setStack] = useState(['']);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const cursor = stack[stack.length - 1];
  useEffect(() => setStack(['']), [id]);
  useEffect(() => {
    let live = true;
    listEvents(id, cursor).then((p) => live && (setPage(p), setError(null)),
      (e) => live && setError(e));
    return () => (live = false);
  }, [id, cursor, reload]);
  const toggle = (eventId) => {
    const next = new Set(selected);
    if (next.has(eventId)) next.delete(eventId);
    else next.add(eventId);
    setSelected(next);
  };
  return (
    <section aria-labelledby="events-title">
      <h2 id="events-title">Member events (newest first)</h2>
      <ErrorNote error={error} />
      {canWrite && <Split id={id} selected={[...selected]} onDone={(r) => (setSelected(new Set()), onSplit(r))} />}
      <ul class="events" data-testid="events">
        {(page?.events || []).map((e) => (
          <li key={e.eventId} data-event={e.eventId}>
            {canWrite && (
              <input type="checkbox" id={`sel-${e.eventId}`} checked={selected.has(e.eventId)}
                onChange={() => toggle(e.eventId)} aria-label={`select event ${e.eventId}`} />
            )}
            <span class="muted">{(e.occurredAt || '').replace('T', ' ').slice(0, 16)} ·{' '}
              {(e.source || '').replace('SOURCE_', '').toLowerCase()} · {e.accountId}</span>
            <p>{e.text}</p>
            {e.externalUrl && <a href={e.externalUrl} rel="noopener noreferrer">{e.externalUrl}</a>}
          </li>
        ))}
      </ul>
      <nav class="pager" aria-label="Event pages">
        <button type="button" disabled={stack.length < 2} onClick={() => setStack(stack.slice(0, -1))}>
          Newer</button>
        <button type="button" disabled={!page?.nextCursor}
          onClick={() => setStack([...stack, page.nextCursor])}>Older</button>
      </nav>
    </section>
  );
}

function Facts({ p, merged }) {
  return (
    <dl class="facts">
      <dt>Events</dt><dd>{num(p.eventCount)}</dd>
      <dt>Accounts</dt><dd>{num(p.accountCount)}</dd>
      <dt>ARR at risk</dt><dd>{money(p.arrAtRiskCents)}</dd>
      <dt>Trend</dt><dd>{fixed(p.trend)}</dd>
      <dt>First / last seen</dt><dd>{date(p.firstSeen)} / {date(p.lastSeen)}</dd>
      <dt>Sources</dt>
      <dd data-testid="sources">{SOURCES.map(([s, name]) => `${name} ${sourceCount(p, s)}`).join(' · ')}</dd>
      <dt>Merged into this</dt><dd data-testid="merged">{merged.length ? merged.join(', ') : 'none'}</dd>
    </dl>
  );
}

export function PainPoint({ id, canWrite, revision }) {
  const [p, setP] = useState(null);
  const [merged, setMerged] = useState([]);
  const [error, setError] = useState(null);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    let live = true;
    Promise.all([getPainPoint(id), getMergedIds(id)]).then(([summary, m]) => {
      if (!live) return;
      setP(summary);
      setMerged(m.ids || []);
      setError(null);
    }, (e) => live && setError(e));
    return () => (live = false);
  }, [id, revision, reload]);
  const refresh = () => setReload(reload + 1);
  if (!p) return <section><h1>Pain point</h1><ErrorNote error={error} /></section>;
  return (
    <section aria-labelledby="pp-title">
      <p><Link href={`/products/${encodeURIComponent(p.productId)}`}>← {p.productId}</Link></p>
      <h1 id="pp-title" data-testid="label">{p.label || p.id}</h1>
      <p class="muted">{p.id} · keywords: {(p.keywords || []).join(', ')}</p>
      <ErrorNote error={error} />
      <div class="columns">
        <Facts p={p} merged={merged} />
        <SeverityParts p={p} />
      </div>
      <DailyChart counts={ownWindow(p)} lastSeen={p.lastSeen} />
      {canWrite && <Curation p={p} onChanged={refresh} />}
      <section aria-labelledby="ex-title">
        <h2 id="ex-title">Exemplars</h2>
        <ul data-testid="exemplars">
          {(p.exemplars || []).map((x) => <li key={x.eventId}>{x.text}</li>)}
        </ul>
      </section>
      <Events id={p.id} canWrite={canWrite} reload={reload}
        onSplit={(r) => navigate(`/pain-points/${encodeURIComponent(r.id)}`)} />
    </section>
  );
}
