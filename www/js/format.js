// How values are shown on the page: percentages, durations, sizes, and the display name and
// colour of a strategy id ('frozen', 'top:K', 'lora:R', 'full'). Pure functions, no DOM.

const COLORS = { frozen: '#2563eb', top: '#d97706', lora: '#9333ea', full: '#16a34a' };

const kindOf = (s) => (s.startsWith('top:') ? 'top' : s.startsWith('lora:') ? 'lora' : s);

/** Whether strategy `s` is a LoRA run ('lora:R'). */
export const isLora = (s) => typeof s === 'string' && s.startsWith('lora:');

/** The colour of a strategy in the charts, the results table and Try it. */
export const colorOf = (s) => COLORS[kindOf(s)] || '#6b7280';

/** 'Frozen encoder', 'Top 2 layers', 'LoRA rank 8', 'Full fine-tuning'. */
export function strategyName(s) {
  if (s === 'frozen') return 'Frozen encoder';
  if (s === 'full') return 'Full fine-tuning';
  if (isLora(s)) return `LoRA rank ${s.slice(5)}`;
  const k = s.slice(4);
  return `Top ${k} layer${k === '1' ? '' : 's'}`;
}

/** 0.5 → '50.0 %'; missing → '—'. */
export const pct = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(1)} %`);
/** Milliseconds → '2.5 s' (whole seconds from 10 s on); missing → '—'. */
export const secs = (ms) => (ms === null || ms === undefined ? '—' : ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
/** Bytes → '418 MB' (MiB; below 1 MiB in KB); missing → '—'. */
export function megabytes(b) {
  if (b === null || b === undefined) return '—';
  if (b < 1048576) return `${Math.max(b > 0 ? 1 : 0, Math.round(b / 1024))} KB`;
  return `${(b / 1048576).toFixed(0)} MB`;
}
/** 9003 → '9,003'. */
export const count = (n) => (n === null || n === undefined ? '—' : Math.round(n).toLocaleString('en-US'));
/** Bytes → '1.2 MB' (decimal, for file sizes). */
export const fileSize = (b) => (b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} kB` : `${b} bytes`);
/** Milliseconds of time left → '45 s', '3 min 10 s', '1 h 5 min'; null → null. */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return null;
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
