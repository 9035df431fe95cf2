// A stored definition (JSON) written back as block YAML, the way people write pipeline files:
// what the editor starts from and what the version diff compares.

const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;
const NUMBERISH = /^[-+]?(\.?\d|\.inf|\.nan|0x|0o)/i;

function plain(s) {
  return s.length > 0 && /^[A-Za-z_/.][A-Za-z0-9_./@:+-]*( [A-Za-z0-9_./@:+-]+)*$/.test(s) && !RESERVED.test(s)
    && !NUMBERISH.test(s) && !s.includes(': ') && !s.includes(' #') && !s.endsWith(':');
}

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  const s = String(v);
  return plain(s) ? s : JSON.stringify(s);
}

const isNested = (v) => v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
const empty = (v) => (Array.isArray(v) ? '[]' : '{}');

function lines(v, ind) {
  const pad = ' '.repeat(ind);
  const out = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isNested(item)) {
        const sub = lines(item, ind + 2);
        sub[0] = `${pad}- ${sub[0].slice(ind + 2)}`;
        out.push(...sub);
      } else {
        out.push(`${pad}- ${item !== null && typeof item === 'object' ? empty(item) : scalar(item)}`);
      }
    }
  } else {
    for (const [k, val] of Object.entries(v)) {
      if (isNested(val)) {
        out.push(`${pad}${scalar(k)}:`);
        out.push(...lines(val, ind + 2));
      } else {
        out.push(`${pad}${scalar(k)}: ${val !== null && typeof val === 'object' ? empty(val) : scalar(val)}`);
      }
    }
  }
  return out;
}

/** `value` (a JSON object) as YAML text, ending with a newline. */
export function toYaml(value) {
  if (!isNested(value)) return `${scalar(value)}\n`;
  return `${lines(value, 0).join('\n')}\n`;
}
