// A pipeline's steps drawn as a graph: boxes (id, plugin, digest) in layers by depth, left to
// right, edges from each step's inputs. `update` recolours steps and relabels edges in place
// (the run page's live counts).
import { h, s } from './dom.js';

const W = 190;
const H = 82;
const GAP_X = 70;
const GAP_Y = 22;
const PAD = 12;
let graphs = 0;

/** The inputs of a step as written: `STEP` or `STEP.OUTPUT` (a named output of STEP). */
function inputRefs(step) {
  if (Array.isArray(step.inputs)) return step.inputs;
  return step.input ? [step.input] : [];
}

/** The ids of the steps a step reads from. */
export function inputsOf(step) {
  return inputRefs(step).map((ref) => String(ref).split('.')[0]);
}

/** Depth of each step (longest path from a source), safe against cycles. */
function depths(steps) {
  const byId = new Map(steps.map((st) => [st.id, st]));
  const depth = new Map();
  const visiting = new Set();
  const visit = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id) || !byId.has(id)) return 0;
    visiting.add(id);
    const ins = inputsOf(byId.get(id)).filter((i) => byId.has(i));
    const d = ins.length ? Math.max(...ins.map(visit)) + 1 : 0;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  steps.forEach((st) => visit(st.id));
  return depth;
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The graph of `steps` ({id, plugin, input|inputs}); `pins` maps step id to digest. Returns
 * {el, update(stats)} where stats maps step id to {status, text, out}.
 */
export function dagView(steps, pins = {}, { label = 'Pipeline graph' } = {}) {
  const n = ++graphs;
  const depth = depths(steps);
  const layers = [];
  for (const st of steps) {
    const d = depth.get(st.id) || 0;
    (layers[d] ||= []).push(st);
  }
  // Order each layer by the mean row of its inputs (fewer crossings), sources as written.
  const row = new Map();
  layers.forEach((layer, d) => {
    if (d > 0) {
      const key = (st) => {
        const rows = inputsOf(st).map((i) => row.get(i)).filter((r) => r !== undefined);
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0;
      };
      layer.sort((a, b) => key(a) - key(b));
    }
    layer.forEach((st, i) => row.set(st.id, i));
  });
  const tallest = Math.max(1, ...layers.map((l) => (l ? l.length : 0)));
  const width = PAD * 2 + layers.length * W + Math.max(0, layers.length - 1) * GAP_X;
  const height = PAD * 2 + tallest * H + (tallest - 1) * GAP_Y;
  const pos = new Map();
  layers.forEach((layer, d) => {
    const offset = ((tallest - layer.length) * (H + GAP_Y)) / 2;
    layer.forEach((st, i) => pos.set(st.id, { x: PAD + d * (W + GAP_X), y: PAD + offset + i * (H + GAP_Y) }));
  });
  const marker = `arrow-${n}`;
  const edges = [];
  const edgeLabels = new Map();
  for (const st of steps) {
    for (const ref of inputRefs(st)) {
      const [from, port] = String(ref).split('.');
      const a = pos.get(from);
      const b = pos.get(st.id);
      if (!a || !b) continue;
      const x1 = a.x + W;
      const y1 = a.y + H / 2;
      const x2 = b.x - 4;
      const y2 = b.y + H / 2;
      const mid = (x1 + x2) / 2;
      edges.push(s('path', { class: 'edge', d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, 'marker-end': `url(#${marker})` }));
      if (port) edges.push(s('text', { class: 'edge-port', x: x1 + 6, y: y1 - 6 }, port));
      const lbl = s('text', { class: 'edge-label', x: mid, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle' });
      edges.push(lbl);
      (edgeLabels.get(from) || edgeLabels.set(from, []).get(from)).push(lbl);
    }
  }
  const nodes = new Map();
  const boxes = steps.map((st) => {
    const p = pos.get(st.id);
    const digest = pins[st.id] ? String(pins[st.id]).replace(/^sha256:/, '') : '';
    const status = s('text', { class: 'node-status', x: p.x + 10, y: p.y + 73 });
    const g = s('g', { class: 'node', dataset: { step: st.id } },
      s('title', {}, `${st.id}: ${st.plugin}${digest ? ` (sha256:${digest})` : ''}`),
      s('rect', { x: p.x, y: p.y, width: W, height: H, rx: 6 }),
      s('text', { class: 'node-id', x: p.x + 10, y: p.y + 20 }, clip(st.id, 18)),
      s('text', { class: 'node-plugin', x: p.x + 10, y: p.y + 38 }, clip(st.plugin || '', 28)),
      s('text', { class: 'node-digest', x: p.x + 10, y: p.y + 55 }, digest ? `sha256:${digest.slice(0, 12)}…` : ''),
      status);
    nodes.set(st.id, { g, status });
    return g;
  });
  const svg = s('svg', {
    class: 'dag', role: 'img', 'aria-label': `${label}: ${steps.map((st) => `${st.id} (${st.plugin})${inputsOf(st).length ? ` from ${inputsOf(st).join(', ')}` : ''}`).join('; ')}`,
    viewBox: `0 0 ${width} ${height}`, width, height,
  },
  s('defs', {}, s('marker', { id: marker, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { class: 'arrow', d: 'M0,0 L10,5 L0,10 z' }))),
  edges, boxes);
  const el = h('div', { class: 'dag-wrap' }, steps.length ? svg : h('p', { class: 'muted' }, 'No steps.'));
  function update(stats) {
    for (const [id, { g, status }] of nodes) {
      const st = stats[id];
      g.setAttribute('class', `node${st && st.status ? ` node-${st.status}` : ''}`);
      status.textContent = st && st.text ? st.text : '';
      for (const lbl of edgeLabels.get(id) || []) lbl.textContent = st && st.out !== undefined ? `${st.out} →` : '';
    }
  }
  return { el, update };
}
