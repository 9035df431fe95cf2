// A pipeline's schedule in words (its next slot comes from the server): cron with seconds first
// (`sec min hour day-of-month month day-of-week [year]`, days of the week 1-7 from Sunday or
// SUN-SAT), read in the schedule's time zone.

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

function field(text, min, max, names) {
  const value = (t) => {
    const i = names ? names.indexOf(t.toUpperCase()) : -1;
    if (i >= 0) return i + min;
    const n = Number(t);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`bad value ${t}`);
    return n;
  };
  const set = new Set();
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`bad step ${part}`);
    let lo;
    let hi;
    if (range === '*' || range === '?') [lo, hi] = [min, max];
    else if (range.includes('-')) [lo, hi] = range.split('-').map(value);
    else {
      lo = value(range);
      hi = stepText === undefined ? lo : max;
    }
    for (let v = lo; v <= hi; v += step) set.add(v);
  }
  return { set, any: text === '*' || text === '?', text };
}

/** The parsed expression, or null when it is not one this page understands. */
export function parseCron(expr) {
  const f = String(expr || '').trim().split(/\s+/);
  if (f.length !== 6 && f.length !== 7) return null;
  try {
    return {
      sec: field(f[0], 0, 59),
      min: field(f[1], 0, 59),
      hour: field(f[2], 0, 23),
      dom: field(f[3], 1, 31),
      mon: field(f[4], 1, 12, MONTHS),
      dow: field(f[5], 1, 7, DAYS),
      year: f[6] ? field(f[6], 1970, 2200) : null,
    };
  } catch {
    return null;
  }
}

const two = (n) => String(n).padStart(2, '0');

/** The schedule in words where it is a common one, else the expression itself. */
export function cronWords(expr) {
  const c = parseCron(expr);
  if (!c) return `cron ${expr}`;
  const f = String(expr).trim().split(/\s+/);
  const every = (t, unit) => {
    const m = /^(\*|0)\/(\d+)$/.exec(t);
    if (t === '*') return `every ${unit}`;
    return m ? `every ${m[2]} ${unit}s` : null;
  };
  const dayAny = c.dom.any && c.mon.any && c.dow.any && (!c.year || c.year.any);
  if (dayAny) {
    if (f[1] === '*' && f[2] === '*') {
      const w = every(f[0], 'second');
      if (w) return w;
    }
    if (f[0] === '0' && f[2] === '*') {
      const w = every(f[1], 'minute');
      if (w) return w;
      if (c.min.set.size === 1) return `every hour at minute ${f[1]}`;
    }
    if (f[0] === '0' && f[1] === '0') {
      const w = every(f[2], 'hour');
      if (w) return w;
    }
  }
  const oneTime = c.sec.set.size === 1 && c.min.set.size === 1 && c.hour.set.size === 1;
  if (oneTime && c.dom.any && c.mon.any) {
    const at = `${two([...c.hour.set][0])}:${two([...c.min.set][0])}${[...c.sec.set][0] ? `:${two([...c.sec.set][0])}` : ''}`;
    if (c.dow.any) return `every day at ${at}`;
    const days = [...c.dow.set].sort().map((d) => DAY_NAMES[d - 1]);
    if (days.length === 5 && !c.dow.set.has(1) && !c.dow.set.has(7)) return `weekdays at ${at}`;
    return `${days.join(', ')} at ${at}`;
  }
  return `cron ${expr}`;
}
