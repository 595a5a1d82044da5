// The colour of a class on the embedding map (true class of a sentence). Pure, no DOM.
// Up to 10 classes: a categorical palette that stays distinct (Tableau 10); up to 20: its
// light companions too; beyond (Banking77 has 77 intents) no palette keeps every class apart,
// so hues step by the golden angle with three lightness levels: neighbouring class ids get far
// apart colours, and the sentence's class is always readable from the hover / focus text.

const TABLEAU10 = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const TABLEAU20_LIGHT = ['#a0cbe8', '#ffbe7d', '#ff9d9a', '#86bcb6', '#8cd17d', '#f1ce63', '#d4a6c8', '#fabfd2', '#d7b5a6', '#79706e'];

/** Colours for `n` classes, in class-id order. */
export function classColors(n) {
  if (n <= 10) return TABLEAU10.slice(0, Math.max(0, n));
  if (n <= 20) return [...TABLEAU10, ...TABLEAU20_LIGHT].slice(0, n);
  return Array.from({ length: n }, (_, i) => {
    const hue = Math.round((i * 137.508) % 360);
    const light = [42, 58, 32][i % 3];
    return `hsl(${hue}, 68%, ${light}%)`;
  });
}
