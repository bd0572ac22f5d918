// A hand-rolled SVG sparkline: a polyline over the counts, oldest first.
export function Sparkline({ counts, width = 112, height = 24, label }) {
  const max = Math.max(1, ...counts);
  const step = counts.length > 1 ? width / (counts.length - 1) : width;
  const points = counts
    .map((c, i) => `${(i * step).toFixed(1)},${(height - 1 - (c / max) * (height - 2)).toFixed(1)}`)
    .join(' ');
  return (
    <svg class="spark" width={width} height={height} viewBox={`0 0 ${width} ${height}`}
      role="img" aria-label={label}>
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  );
}

// A bar chart of daily counts with the first and last day written under it.
export function DailyChart({ counts, lastSeen }) {
  const width = 560;
  const height = 120;
  const max = Math.max(1, ...counts);
  const bar = width / Math.max(1, counts.length);
  const end = lastSeen ? new Date(lastSeen.slice(0, 10) + 'T00:00:00Z') : new Date();
  const first = new Date(end.getTime() - (counts.length - 1) * 86_400_000);
  const total = counts.reduce((a, b) => a + b, 0);
  return (
    <figure class="chart">
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img"
        aria-label={`${total} events over ${counts.length} days`}>
        {counts.map((c, i) => (
          <rect x={i * bar + 1} width={Math.max(1, bar - 2)} y={height - (c / max) * height}
            height={(c / max) * height}>
            <title>{c}</title>
          </rect>
        ))}
      </svg>
      <figcaption>
        Events per day, {first.toISOString().slice(0, 10)} to {end.toISOString().slice(0, 10)}
        {' '}(peak {max})
      </figcaption>
    </figure>
  );
}
