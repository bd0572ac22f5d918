import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { listPainPoints } from './api.js';
import {
  boardCsv, date, fixed, matchesText, money, num, ownWindow, SORTS, SOURCES, sortPainPoints,
  sourceCount,
} from './model.js';
import { Sparkline } from './Sparkline.jsx';
import { ErrorNote, Link } from './ui.jsx';

const PAGE_SIZE = 100;

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

// Ids that are new, or whose version grew, since the previous load (none on the first load).
function changedIds(previous, list) {
  const marks = new Map();
  if (!previous) return marks;
  for (const p of list) {
    const before = previous.get(p.id);
    if (before === undefined) marks.set(p.id, 'new');
    else if (before !== num(p.version)) marks.set(p.id, 'updated');
  }
  return marks;
}

function Row({ p, mark }) {
  return (
    <tr data-id={p.id} class={mark ? 'marked' : ''}>
      <td>
        <Link href={`/pain-points/${encodeURIComponent(p.id)}`}>{p.label || p.id}</Link>
        {mark && <span class="badge" data-testid="mark">{mark}</span>}
        <div class="muted">{(p.keywords || []).join(', ')}</div>
      </td>
      <td class="n">{fixed(p.severity)}</td>
      <td class="n">{num(p.eventCount)}</td>
      <td class="n">{num(p.accountCount)}</td>
      <td class="n">{money(p.arrAtRiskCents)}</td>
      <td class="n split">{SOURCES.map(([s]) => sourceCount(p, s)).join(' / ')}</td>
      <td><Sparkline counts={ownWindow(p)} label="events per day" /></td>
      <td class="n">{fixed(p.trend)}</td>
      <td>{date(p.firstSeen)}</td>
      <td>{date(p.lastSeen)}</td>
    </tr>
  );
}

function Controls({ sort, setSort, source, setSource, text, setText, onExport }) {
  return (
    <div class="controls">
      <label>Sort by{' '}
        <select value={sort} onChange={(e) => setSort(e.currentTarget.value)} data-testid="sort">
          {Object.entries(SORTS).map(([k, s]) => <option value={k}>{s.label}</option>)}
        </select>
      </label>
      <label>Source{' '}
        <select value={source} onChange={(e) => setSource(e.currentTarget.value)}
          data-testid="source">
          <option value="">All sources</option>
          {SOURCES.map(([s, name]) => <option value={s}>{name}</option>)}
        </select>
      </label>
      <label>Filter{' '}
        <input type="search" value={text} placeholder="label or keyword" data-testid="filter"
          onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button type="button" onClick={onExport}>Export CSV</button>
    </div>
  );
}

export function Board({ productId, revision }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [marks, setMarks] = useState(new Map());
  const [sort, setSort] = useState('severity');
  const [source, setSource] = useState('');
  const [text, setText] = useState('');
  const [page, setPage] = useState(0);
  const versions = useRef(null);

  useEffect(() => {
    versions.current = null;
    setMarks(new Map());
    setList(null);
  }, [productId]);
  useEffect(() => {
    let live = true;
    listPainPoints(productId).then((l) => {
      if (!live) return;
      const next = changedIds(versions.current, l);
      versions.current = new Map(l.map((p) => [p.id, num(p.version)]));
      setMarks((old) => (next.size ? new Map([...old, ...next]) : old));
      setList(l);
      setError(null);
    }, (e) => live && setError(e));
    return () => (live = false);
  }, [productId, revision]);
  useEffect(() => setPage(0), [sort, source, text]);

  const shown = useMemo(() => {
    if (!list) return [];
    const filtered = list.filter((p) => matchesText(p, text) &&
      (!source || sourceCount(p, source) > 0));
    return sortPainPoints(filtered, sort);
  }, [list, sort, source, text]);
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  const rows = shown.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);

  return (
    <section aria-labelledby="board-title">
      <h1 id="board-title">{productId}</h1>
      <ErrorNote error={error} />
      <Controls sort={sort} setSort={setSort} source={source} setSource={setSource} text={text}
        setText={setText} onExport={() => download(`${productId}-pain-points.csv`, boardCsv(shown))} />
      {list && (
        <>
          <p class="muted" aria-live="polite" data-testid="count">
            {shown.length} of {list.length} pain points
          </p>
          <table class="grid board" data-testid="board">
            <thead>
              <tr>
                <th scope="col">Pain point</th><th scope="col" class="n">Severity</th>
                <th scope="col" class="n">Events</th><th scope="col" class="n">Accounts</th>
                <th scope="col" class="n">ARR at risk</th>
                <th scope="col" class="n"><abbr title="support / sales / customer">Sources</abbr></th>
                <th scope="col">Daily</th><th scope="col" class="n">Trend</th>
                <th scope="col">First seen</th><th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>{rows.map((p) => <Row key={p.id} p={p} mark={marks.get(p.id)} />)}</tbody>
          </table>
          <nav class="pager" aria-label="Pages">
            <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
              Previous</button>
            <span>Page {page + 1} of {pages}</span>
            <button type="button" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
              Next</button>
          </nav>
        </>
      )}
    </section>
  );
}
