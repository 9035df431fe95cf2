// A line diff (longest common subsequence) and its side-by-side rendering.
import { h } from './dom.js';

/**
 * The edit script from `a` to `b` (arrays of lines): items {op: 'same'|'del'|'add', a, b, text}
 * with 1-based line numbers on the side(s) the line is on.
 */
export function diffLines(a, b) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const n = endA - start;
  const m = endB - start;
  // lcs[i][j]: LCS length of a[start+i..endA) and b[start+j..endB).
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = a[start + i] === b[start + j]
        ? lcs[(i + 1) * w + j + 1] + 1
        : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    }
  }
  const out = [];
  for (let k = 0; k < start; k++) out.push({ op: 'same', a: k + 1, b: k + 1, text: a[k] });
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[start + i] === b[start + j]) {
      out.push({ op: 'same', a: start + i + 1, b: start + j + 1, text: a[start + i] });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
      out.push({ op: 'del', a: start + i + 1, text: a[start + i] });
      i++;
    } else {
      out.push({ op: 'add', b: start + j + 1, text: b[start + j] });
      j++;
    }
  }
  for (let k = 0; k < a.length - endA; k++) {
    out.push({ op: 'same', a: endA + k + 1, b: endB + k + 1, text: a[endA + k] });
  }
  return out;
}

/** Rows of a side-by-side view: deletions and additions of one block paired up. */
export function sideBySide(script) {
  const rows = [];
  let dels = [];
  let adds = [];
  const flush = () => {
    for (let k = 0; k < Math.max(dels.length, adds.length); k++) rows.push({ left: dels[k] || null, right: adds[k] || null });
    dels = [];
    adds = [];
  };
  for (const item of script) {
    if (item.op === 'del') dels.push(item);
    else if (item.op === 'add') adds.push(item);
    else {
      flush();
      rows.push({ left: item, right: item });
    }
  }
  flush();
  return rows;
}

/** A unified diff table: both line numbers, then the line marked − or +. */
function unifiedTable(script, titleA, titleB) {
  return h('table', { class: 'diff-table unified' },
    h('colgroup', {}, h('col', { class: 'ln-col' }), h('col', { class: 'ln-col' }), h('col', {})),
    h('thead', {}, h('tr', {}, h('th', { colspan: 3, scope: 'col' }, `${titleA} → ${titleB}`))),
    h('tbody', {}, script.map((x) => {
      const cls = x.op === 'same' ? 'same' : x.op;
      const mark = x.op === 'same' ? ' ' : x.op === 'del' ? '−' : '+';
      return h('tr', {}, h('td', { class: 'ln' }, x.a || ''), h('td', { class: 'ln' }, x.b || ''),
        h('td', { class: ['code', cls], dataset: { op: cls } }, h('span', { class: 'mark', 'aria-hidden': 'true' }, mark), x.text));
    })));
}

/**
 * A diff of texts `a` and `b`, headed `titleA` and `titleB`: side by side, or unified when
 * `unified` (the default on narrow screens).
 */
export function diffTable(a, b, titleA, titleB, unified = window.matchMedia('(max-width: 760px)').matches) {
  const script = diffLines(a.replace(/\n$/, '').split('\n'), b.replace(/\n$/, '').split('\n'));
  const removed = script.filter((x) => x.op === 'del').length;
  const added = script.filter((x) => x.op === 'add').length;
  const plural = (n) => `${n} line${n === 1 ? '' : 's'}`;
  const cell = (item, side) => {
    if (!item) return [h('td', { class: 'ln' }), h('td', { class: 'code empty' })];
    const cls = item.op === 'same' ? 'same' : side === 'left' ? 'del' : 'add';
    const mark = item.op === 'same' ? ' ' : side === 'left' ? '−' : '+';
    return [
      h('td', { class: 'ln' }, side === 'left' ? item.a : item.b),
      h('td', { class: ['code', cls], dataset: { op: cls } }, h('span', { class: 'mark', 'aria-hidden': 'true' }, mark), item.text),
    ];
  };
  return h('div', { class: 'diff' },
    h('p', { class: 'muted diff-summary' }, removed || added ? `${plural(removed)} removed, ${plural(added)} added` : 'No difference'),
    h('div', { class: 'table-wrap' }, unified ? unifiedTable(script, titleA, titleB) :
      h('table', { class: 'diff-table' },
        h('colgroup', {}, h('col', { class: 'ln-col' }), h('col', {}), h('col', { class: 'ln-col' }), h('col', {})),
        h('thead', {}, h('tr', {}, h('th', { colspan: 2, scope: 'col' }, titleA), h('th', { colspan: 2, scope: 'col' }, titleB))),
        h('tbody', {}, sideBySide(script).map((r) => h('tr', {}, cell(r.left, 'left'), cell(r.right, 'right')))))));
}
