// How values are shown on the page: percentages, durations, sizes, and the display name and
// colour of a strategy id ('frozen', 'top:K', 'full'). Pure functions, no DOM.

const COLORS = { frozen: '#2563eb', top: '#d97706', full: '#16a34a' };

const kindOf = (s) => (s.startsWith('top:') ? 'top' : s);

/** The colour of a strategy in the charts, the results table and Try it. */
export const colorOf = (s) => COLORS[kindOf(s)] || '#6b7280';

/** 'Frozen encoder', 'Top 2 layers', 'Full fine-tuning'. */
export function strategyName(s) {
  if (s === 'frozen') return 'Frozen encoder';
  if (s === 'full') return 'Full fine-tuning';
  const k = s.slice(4);
  return `Top ${k} layer${k === '1' ? '' : 's'}`;
}

/** 0.5 → '50.0 %'; missing → '—'. */
export const pct = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(1)} %`);
/** Milliseconds → '2.5 s' (whole seconds from 10 s on); missing → '—'. */
export const secs = (ms) => (ms === null || ms === undefined ? '—' : ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
/** Bytes → '418 MB' (MiB); missing → '—'. */
export const megabytes = (b) => (b === null || b === undefined ? '—' : `${(b / 1048576).toFixed(0)} MB`);
