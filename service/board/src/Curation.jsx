import { useEffect, useState } from 'preact/hooks';
import { listPainPoints, mergePainPoint, renamePainPoint, splitPainPoint } from './api.js';
import { matchesText, num } from './model.js';
import { ErrorNote, navigate } from './ui.jsx';

function useAction() {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async (action) => {
    setBusy(true);
    setError(null);
    try {
      return await action();
    } catch (e) {
      setError(e);
      return null;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run };
}

function Rename({ p, onChanged }) {
  const [label, setLabel] = useState(p.label || '');
  const { error, busy, run } = useAction();
  useEffect(() => setLabel(p.label || ''), [p.id, p.label]);
  const submit = async (e) => {
    e.preventDefault();
    if (await run(() => renamePainPoint(p.id, label))) onChanged();
  };
  return (
    <form onSubmit={submit} data-testid="rename">
      <label for="rename-label">New label</label>{' '}
      <input id="rename-label" value={label} onInput={(e) => setLabel(e.currentTarget.value)} />{' '}
      <button type="submit" disabled={busy}>Rename</button>
      <ErrorNote error={error} />
    </form>
  );
}

function Merge({ p }) {
  const [candidates, setCandidates] = useState([]);
  const [query, setQuery] = useState('');
  const [target, setTarget] = useState('');
  const { error, busy, run } = useAction();
  useEffect(() => {
    listPainPoints(p.productId).then((l) => setCandidates(l.filter((c) => c.id !== p.id)), () => {});
  }, [p.id, p.productId]);
  const matches = candidates.filter((c) => matchesText(c, query) || c.id === query).slice(0, 20);
  const submit = async (e) => {
    e.preventDefault();
    const result = await run(() => mergePainPoint(p.id, target));
    if (result) navigate(`/pain-points/${encodeURIComponent(result.id)}`);
  };
  return (
    <form onSubmit={submit} data-testid="merge">
      <label for="merge-search">Merge into (search)</label>{' '}
      <input id="merge-search" type="search" value={query}
        onInput={(e) => setQuery(e.currentTarget.value)} />{' '}
      <label for="merge-target" class="sr-only">Merge target</label>
      <select id="merge-target" value={target} onChange={(e) => setTarget(e.currentTarget.value)}>
        <option value="">choose a pain point</option>
        {matches.map((c) => (
          <option value={c.id}>{c.label || c.id} ({num(c.eventCount)} events)</option>
        ))}
      </select>{' '}
      <button type="submit" disabled={busy || !target}>Merge</button>
      <ErrorNote error={error} />
    </form>
  );
}

export function Split({ id, selected, onDone }) {
  const { error, busy, run } = useAction();
  const split = async () => {
    const result = await run(() => splitPainPoint(id, selected));
    if (result) onDone(result);
  };
  return (
    <div data-testid="split">
      <button type="button" disabled={busy || selected.length === 0} onClick={split}>
        Split {selected.length} selected event{selected.length === 1 ? '' : 's'} into a new pain point
      </button>
      <ErrorNote error={error} />
    </div>
  );
}

export function Curation({ p, onChanged }) {
  return (
    <section aria-labelledby="curation-title" class="curation">
      <h2 id="curation-title">Curation</h2>
      <Rename p={p} onChanged={onChanged} />
      <Merge p={p} />
    </section>
  );
}
