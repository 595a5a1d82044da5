// The per-class table of the strategy chosen under "Confusion matrix for": precision, recall,
// F1 and support per class, sortable by F1 and by support (buttons in the column headers,
// aria-sort on the sorted column; first press: largest first, again: smallest first).
import { $, el } from './dom.js';
import { count, pct } from './format.js';

const sort = { key: null, descending: true }; // key: null (class order) | 'f1' | 'support'
let last = null; // {perClass, caption}

/** Show `perClass` (the `done` event's `per_class`) under `caption`; null clears the table. */
export function renderClassTable(perClass, caption) {
  last = perClass ? { perClass, caption } : null;
  draw();
}

function draw() {
  const table = $('class-table');
  if (!last) {
    table.replaceChildren();
    return;
  }
  const rows = last.perClass.map((c, i) => ({ ...c, index: i }));
  if (sort.key) {
    const k = sort.key;
    rows.sort((a, b) => (sort.descending ? b[k] - a[k] : a[k] - b[k]) || a.index - b.index);
  }
  const sortable = (key, label) => {
    const th = el('th', { scope: 'col', class: 'num' },
      el('button', { type: 'button', class: 'sort', onclick: () => toggle(key) }, label,
        el('span', { class: 'sort-mark', 'aria-hidden': 'true' }, sort.key === key ? (sort.descending ? ' ▼' : ' ▲') : ' ↕')));
    th.setAttribute('aria-sort', sort.key === key ? (sort.descending ? 'descending' : 'ascending') : 'none');
    return th;
  };
  table.replaceChildren(
    el('caption', {}, last.caption),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col' }, 'Class'),
      el('th', { scope: 'col', class: 'num' }, 'Precision'),
      el('th', { scope: 'col', class: 'num' }, 'Recall'),
      sortable('f1', 'F1'),
      sortable('support', 'Support'))),
    el('tbody', {}, ...rows.map((c) => el('tr', {},
      el('th', { scope: 'row', class: 'class-label' }, c.label),
      el('td', { class: 'num' }, pct(c.precision)),
      el('td', { class: 'num' }, pct(c.recall)),
      el('td', { class: 'num' }, pct(c.f1)),
      el('td', { class: 'num' }, count(c.support))))));
}

function toggle(key) {
  if (sort.key === key) sort.descending = !sort.descending;
  else {
    sort.key = key;
    sort.descending = true;
  }
  draw();
  // Keep the keyboard focus on the pressed header button (the table was redrawn).
  const buttons = Array.from($('class-table').querySelectorAll('thead button'));
  const again = buttons.find((b) => b.firstChild && b.firstChild.textContent === (key === 'f1' ? 'F1' : 'Support'));
  if (again) again.focus();
}
