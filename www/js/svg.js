// A tiny SVG element builder for the page's hand-drawn charts (layer changes, separation).
// Text goes in as text nodes only (never as markup).

const NS = 'http://www.w3.org/2000/svg';

/** A new SVG element with these attributes; `children` are nodes or text (null/false skipped). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
