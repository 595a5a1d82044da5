// A small JSON Schema validator for the subset www/record.schema.json uses: type (one or a
// list), const, enum, required, properties, items, minimum, oneOf and local $ref
// ("#/$defs/name"). Pure (no DOM): the page's "Load results" and the end-to-end tests use it.
// Unknown keywords are ignored; extra properties are allowed (records may grow new fields).

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const typeMatches = (actual, wanted) => actual === wanted || (wanted === 'number' && actual === 'integer');

function resolve(root, ref) {
  if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(2).split('/').reduce((node, key) => node && node[key], root);
}

const show = (v) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/**
 * The problems of `value` against `schema` (empty: valid), each `"path: message"`; at most
 * `limit` of them. `root` resolves $refs (defaults to `schema`).
 */
export function validate(value, schema, { root = schema, path = '$', limit = 20 } = {}) {
  const errors = [];
  check(value, schema, path, root, errors, limit);
  return errors;
}

function check(v, s, path, root, errors, limit) {
  if (errors.length >= limit) return;
  if (s.$ref) {
    check(v, resolve(root, s.$ref), path, root, errors, limit);
    return;
  }
  if ('const' in s && v !== s.const) {
    errors.push(`${path}: expected ${show(s.const)}, got ${show(v)}`);
    return;
  }
  if (s.enum && !s.enum.includes(v)) {
    errors.push(`${path}: expected one of ${s.enum.map(show).join(', ')}, got ${show(v)}`);
    return;
  }
  if (s.type) {
    const wanted = Array.isArray(s.type) ? s.type : [s.type];
    const actual = typeOf(v);
    if (!wanted.some((w) => typeMatches(actual, w))) {
      errors.push(`${path}: expected ${wanted.join(' or ')}, got ${actual}`);
      return;
    }
  }
  if (s.oneOf) {
    checkOneOf(v, s.oneOf, path, root, errors, limit);
    return;
  }
  if (typeof v === 'number' && s.minimum !== undefined && v < s.minimum) errors.push(`${path}: ${v} is below ${s.minimum}`);
  if (typeOf(v) === 'object') {
    for (const key of s.required || []) {
      if (!(key in v)) errors.push(`${path}: missing "${key}"`);
    }
    for (const [key, sub] of Object.entries(s.properties || {})) {
      if (key in v) check(v[key], sub, `${path}.${key}`, root, errors, limit);
    }
  }
  if (Array.isArray(v) && s.items) {
    for (let i = 0; i < v.length && errors.length < limit; i++) check(v[i], s.items, `${path}[${i}]`, root, errors, limit);
  }
}

// Exactly one branch must match. When none does, the branch whose `type` constant names the
// value's `type` field explains why (e.g. a `step` event without `loss`).
function checkOneOf(v, branches, path, root, errors, limit) {
  const results = branches.map((b) => {
    const errs = [];
    check(v, b, path, root, errs, limit);
    return errs;
  });
  const matching = results.filter((e) => e.length === 0).length;
  if (matching === 1) return;
  if (matching > 1) {
    errors.push(`${path}: matches ${matching} alternatives, expected exactly one`);
    return;
  }
  const tag = v && typeof v === 'object' ? v.type : undefined;
  const named = branches.findIndex((b) => {
    const resolved = b.$ref ? resolve(root, b.$ref) : b;
    return resolved.properties && resolved.properties.type && resolved.properties.type.const === tag;
  });
  if (named >= 0) errors.push(...results[named].slice(0, limit - errors.length));
  else errors.push(`${path}: not a known kind${tag !== undefined ? ` (type ${show(tag)})` : ''}`);
}
