import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { canWrite as probeWrite, getToken, pollProducts, setToken } from './api.js';
import { Board } from './Board.jsx';
import { Overview } from './Overview.jsx';
import { PainPoint } from './PainPoint.jsx';
import { ErrorNote, Link } from './ui.jsx';
import './style.css';

// How often the board asks whether anything changed: product totals move with every stored
// batch and every merge, so a change shows within one interval plus one reload.
const LIVE_INTERVAL_MS = 1000;

function route(pathname) {
  let m = /^\/products\/([^/]+)\/?$/.exec(pathname);
  if (m) return { view: 'board', productId: decodeURIComponent(m[1]) };
  m = /^\/pain-points\/([^/]+)\/?$/.exec(pathname);
  if (m) return { view: 'pain-point', id: decodeURIComponent(m[1]) };
  return { view: 'overview' };
}

function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  return path;
}

// Bumps the returned number whenever GET /v1/products answers something new (a 304 to the
// previous ETag is nothing new).
function useLiveRevision(tokenRevision) {
  const [revision, setRevision] = useState(0);
  const [error, setError] = useState(null);
  useEffect(() => {
    let etag = null;
    let live = true;
    const tick = async () => {
      try {
        const answer = await pollProducts(etag);
        if (answer.changed && etag !== null) setRevision((r) => r + 1);
        etag = answer.etag || '';
        setError(null);
      } catch (e) {
        setError(e);
      }
      if (live) timer = setTimeout(tick, LIVE_INTERVAL_MS);
    };
    let timer = setTimeout(tick, 0);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [tokenRevision]);
  return { revision, error };
}

function TokenForm({ onChange, mode }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    setToken(value.trim());
    setValue('');
    onChange();
  };
  return (
    <form class="token" onSubmit={submit}>
      <label for="token">API token</label>{' '}
      <input id="token" type="password" autocomplete="off" value={value}
        onInput={(e) => setValue(e.currentTarget.value)} />{' '}
      <button type="submit">Use token</button>{' '}
      <span class="muted" data-testid="mode">{getToken() ? 'token set' : 'no token'} · {mode}</span>
    </form>
  );
}

function App() {
  const path = usePath();
  const [tokenRevision, setTokenRevision] = useState(0);
  const [writable, setWritable] = useState(false);
  const { revision, error } = useLiveRevision(tokenRevision);
  useEffect(() => {
    probeWrite().then(setWritable);
  }, [tokenRevision]);
  const r = route(path);
  const key = `${tokenRevision}.${revision}`;
  return (
    <>
      <header>
        <nav aria-label="Main"><Link href="/" class="brand">Painpoint</Link></nav>
        <TokenForm onChange={() => setTokenRevision(tokenRevision + 1)}
          mode={writable ? 'can curate' : 'read-only'} />
      </header>
      <main>
        <ErrorNote error={error} />
        {r.view === 'overview' && <Overview revision={key} />}
        {r.view === 'board' && <Board productId={r.productId} revision={key} />}
        {r.view === 'pain-point' && <PainPoint id={r.id} canWrite={writable} revision={key} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app'));
