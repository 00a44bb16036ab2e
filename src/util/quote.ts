// A value as short JSON-like text for an error message: at most `max` characters of it,
// then "...". Safe on anything a peer can send: a 1 MB string costs a slice, and a value
// nested a million levels deep stops after `max` characters (each level prints at least
// one), where JSON.stringify would overflow the stack.

export const QUOTE_MAX = 100;

export function quote(value: unknown, max = QUOTE_MAX): string {
  const out: string[] = [];
  let len = 0;
  const put = (s: string): boolean => {
    out.push(s);
    len += s.length;
    return len <= max;
  };
  const walk = (v: unknown): boolean => {
    if (typeof v === 'string') return put(JSON.stringify(v.length > max ? v.slice(0, max + 1) : v));
    if (v === null || typeof v !== 'object') {
      return put(typeof v === 'number' || typeof v === 'boolean' ? String(v) : v === null ? 'null' : typeof v);
    }
    const array = Array.isArray(v);
    if (!put(array ? '[' : '{')) return false;
    let first = true;
    for (const k of array ? v.keys() : Object.keys(v)) {
      if (!first && !put(',')) return false;
      first = false;
      if (typeof k === 'string' && !put(`${JSON.stringify(k.length > max ? k.slice(0, max + 1) : k)}:`)) return false;
      if (!walk((v as Record<string | number, unknown>)[k])) return false;
    }
    return put(array ? ']' : '}');
  };
  const complete = walk(value);
  const text = out.join('');
  if (complete && text.length <= max) return text;
  const more = typeof value === 'string' ? ` (${value.length} characters)` : '';
  return `${text.slice(0, max)}...${more}`;
}
