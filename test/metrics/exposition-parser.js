'use strict';
// A strict reader of the Prometheus text exposition format, version 0.0.4, written from the
// format's description, for the tests to check what hirecache serves without depending on
// prom-client or a Prometheus server. It throws at the first line that breaks a rule:
//   - every line ends with \n, the last one included;
//   - `# HELP name text` and `# TYPE name type` at most once per name, TYPE before the
//     family's first sample, type one of counter, gauge, histogram, summary, untyped; HELP
//     text escapes only \\ and \n;
//   - a sample is `name{label="value",...} value [timestamp]`: metric and label names
//     valid, label values escaping only \\, \" and \n, no label twice, the value a float
//     (or +Inf, -Inf, NaN), the timestamp an integer;
//   - a family's samples are contiguous, no series (name and labels) appears twice;
//   - a histogram's series are name_bucket (with le), name_sum and name_count; per label
//     set its buckets are cumulative in the order of le, a +Inf bucket exists and equals
//     _count; counters and buckets are never negative.
// Returns Map(family name → { help, type, samples: [{ name, labels, value }] }).

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

function parseValue(text, where) {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!FLOAT.test(text)) throw new Error(`${where}: ${JSON.stringify(text)} is not a sample value`);
  return Number(text);
}

/** Unescapes a HELP text; throws on an escape the format does not define. */
function unescapeHelp(text, where) {
  return text.replace(/\\(.?)/g, (all, c) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    throw new Error(`${where}: HELP text has the escape ${JSON.stringify(all)}`);
  });
}

/**
 * Reads `{a="x",b="y"}` starting at `s[i] === '{'`. Returns { labels, end } where end is the
 * index after '}'.
 */
function parseLabels(s, i, where) {
  const labels = {};
  i += 1;
  if (s[i] === '}') return { labels, end: i + 1 };
  for (;;) {
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: a label without '='`);
    const name = s.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`${where}: ${JSON.stringify(name)} is not a label name`);
    if (Object.prototype.hasOwnProperty.call(labels, name)) throw new Error(`${where}: label ${name} twice`);
    if (s[eq + 1] !== '"') throw new Error(`${where}: the value of label ${name} is not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      if (j >= s.length) throw new Error(`${where}: the value of label ${name} is not closed`);
      const c = s[j];
      if (c === '"') break;
      if (c === '\\') {
        const e = s[j + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else throw new Error(`${where}: label ${name} has the escape \\${e}`);
        j += 2;
        continue;
      }
      value += c;
      j += 1;
    }
    labels[name] = value;
    j += 1;
    if (s[j] === '}') return { labels, end: j + 1 };
    if (s[j] !== ',') throw new Error(`${where}: expected ',' or '}' after label ${name}`);
    i = j + 1;
  }
}

const seriesKey = (name, labels) =>
  `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;

/** The family a sample named `name` belongs to, given the TYPE lines seen. */
function familyOf(name, types) {
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.get(base) === 'histogram' || types.get(base) === 'summary') return base;
    }
  }
  if (types.get(name) === 'histogram') throw new Error(`histogram ${name} has a sample without _bucket/_sum/_count`);
  return name;
}

function checkHistogram(name, family) {
  const byLabels = new Map();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey('', rest);
    if (!byLabels.has(key)) byLabels.set(key, { buckets: [], sum: undefined, count: undefined });
    const g = byLabels.get(key);
    if (s.name === `${name}_bucket`) {
      if (le === undefined) throw new Error(`${name}_bucket without le`);
      g.buckets.push({ le: parseValue(le, `${name} le`), value: s.value });
    } else if (s.name === `${name}_sum`) {
      g.sum = s.value;
    } else if (s.name === `${name}_count`) {
      g.count = s.value;
    }
  }
  for (const [key, g] of byLabels) {
    const where = `histogram ${name}${key}`;
    if (g.sum === undefined || g.count === undefined) throw new Error(`${where}: _sum or _count missing`);
    const sorted = [...g.buckets].sort((a, b) => a.le - b.le);
    if (sorted.length === 0 || sorted[sorted.length - 1].le !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].le === sorted[i - 1].le) throw new Error(`${where}: bucket le=${sorted[i].le} twice`);
      if (sorted[i].value < sorted[i - 1].value) throw new Error(`${where}: buckets are not cumulative at le=${sorted[i].le}`);
    }
    if (sorted[sorted.length - 1].value !== g.count) throw new Error(`${where}: +Inf bucket ${sorted[sorted.length - 1].value} != _count ${g.count}`);
  }
}

function parseExposition(text) {
  if (typeof text !== 'string') throw new Error('exposition: not a string');
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition: the last line does not end with \\n');
  const families = new Map();
  const types = new Map();
  const helps = new Set();
  const series = new Set();
  const closed = new Set();
  let current = null;
  const family = (name) => {
    if (!families.has(name)) families.set(name, { help: undefined, type: 'untyped', samples: [] });
    return families.get(name);
  };
  const lines = text.split('\n');
  lines.pop(); // After the last \n.
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // Another comment.
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: ${JSON.stringify(name)} is not a metric name`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`${where}: HELP for ${name} twice`);
        helps.add(name);
        family(name).help = unescapeHelp(rest, where);
      } else {
        if (types.has(name)) throw new Error(`${where}: TYPE for ${name} twice`);
        if (families.has(name) && families.get(name).samples.length) throw new Error(`${where}: TYPE for ${name} after its samples`);
        if (!TYPES.has(rest.trim())) throw new Error(`${where}: ${JSON.stringify(rest)} is not a metric type`);
        types.set(name, rest.trim());
        family(name).type = rest.trim();
      }
      return;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`${where}: not a sample: ${JSON.stringify(line)}`);
    const name = line.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: ${JSON.stringify(name)} is not a metric name`);
    let labels = {};
    let i = nameEnd;
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, where));
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
    const parts = line.slice(i + 1).split(' ');
    if (parts.length > 2 || parts[0] === '') throw new Error(`${where}: expected 'value [timestamp]'`);
    const value = parseValue(parts[0], where);
    if (parts.length === 2 && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: ${JSON.stringify(parts[1])} is not a timestamp`);

    const base = familyOf(name, types);
    if (base !== current) {
      if (closed.has(base)) throw new Error(`${where}: samples of ${base} are not together`);
      if (current !== null) closed.add(current);
      current = base;
    }
    const key = seriesKey(name, labels);
    if (series.has(key)) throw new Error(`${where}: series ${key} twice`);
    series.add(key);
    const f = family(base);
    const isBucketOrCount = name.endsWith('_bucket') || name.endsWith('_count');
    if ((f.type === 'counter' || (f.type === 'histogram' && isBucketOrCount)) && !(value >= 0)) {
      throw new Error(`${where}: ${name} is negative or NaN`);
    }
    f.samples.push({ name, labels, value });
  });
  for (const [name, f] of families) if (f.type === 'histogram') checkHistogram(name, f);
  return families;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined if none. */
function sampleValue(families, name, labels = {}) {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}

module.exports = { parseExposition, sampleValue };
