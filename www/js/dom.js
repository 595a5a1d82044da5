// Tiny DOM helpers shared by the page modules: find an element, build one, read a number field.
// Text always goes in as text nodes (never as HTML): sentences and labels come from the user.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * A new element: `props` sets `class`, `style` (an object), ARIA, data-…, role, scope and colspan attributes
 * and any other property (`value`, `href`…); `children` are nodes or text (null/false skipped).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'style') Object.assign(node.style, v);
    else if (k.startsWith('aria-') || k.startsWith('data-') || k === 'role' || k === 'scope' || k === 'colspan') node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** The whole number ≥ 0 typed in input `id`, or null when it is not one. */
export function intValue(id) {
  const raw = $(id).value.trim();
  if (!/^\d+$/.test(raw)) return null;
  return Number(raw);
}

/** The number typed in input `id`: null when empty, NaN when not a finite number. */
export function floatValue(id) {
  const raw = $(id).value.trim();
  if (raw === '') return null;
  const v = Number(raw);
  return Number.isFinite(v) ? v : NaN;
}
