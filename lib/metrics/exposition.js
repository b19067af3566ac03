'use strict';
// The Prometheus text exposition format (version 0.0.4): per family a `# HELP` and a
// `# TYPE` line, then its samples, `name{label="value",...} value`, one per line. Help text
// escapes backslash and newline; label values escape backslash, double quote and newline.
const { FAMILIES } = require('./families');
const { metricsSnapshot } = require('./snapshot');
const { checkKnownOptions, checkType, invalidParameterError } = require('../util/validate');

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const DEFAULT_PREFIX = 'hirecache_';
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

const escapeHelp = (text) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabelValue = (text) => String(text).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** A sample value as the format writes it: +Inf, -Inf and NaN spelt out. */
function formatValue(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels) {
  if (labels === null) return '';
  const parts = Object.keys(labels).map((k) => `${k}="${escapeLabelValue(labels[k])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/**
 * The checked options of prometheusText / registerMetrics / metricsHandler: { prefix,
 * extras: { cache, limiters } }. Throws a TypeError naming a wrong or unknown option.
 */
function resolveExpositionOptions(options, where) {
  if (options === null || typeof options !== 'object') throw invalidParameterError('options', 'an object', options, { where });
  checkKnownOptions(options, ['prefix', 'cache', 'limiters'], { where });
  const prefix = options.prefix === undefined ? DEFAULT_PREFIX : checkType('option prefix', options.prefix, 'string', { where });
  if (prefix !== '' && !METRIC_NAME.test(prefix)) {
    throw invalidParameterError('option prefix', 'a metric name prefix (letters, digits, _ and :, not starting with a digit)', prefix, {
      where,
      kind: 'value',
    });
  }
  return { prefix, extras: { cache: options.cache, limiters: options.limiters } };
}

/** Renders families (each with its samples already built) as exposition text. */
function renderFamilies(built, prefix) {
  let out = '';
  for (const { family, samples } of built) {
    if (samples.length === 0) continue;
    const name = prefix + family.name;
    out += `# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${family.type}\n`;
    for (const s of samples) out += `${name}${s.suffix}${formatLabels(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

/** Every family with its samples for one snapshot. */
function buildFamilies(snapshot) {
  return FAMILIES.map((family) => ({ family, samples: family.samples(snapshot) }));
}

/**
 * The client's metrics (and the components' it is given or that registered on it) in the
 * Prometheus text exposition format, version 0.0.4: what a /metrics endpoint serves with
 * Content-Type CONTENT_TYPE. Families without samples are left out.
 *   client   a RedisClient, or null.
 *   options  { prefix = 'hirecache_', cache, limiters } (see metricsSnapshot for the last two).
 */
function prometheusText(client, options = {}) {
  const { prefix, extras } = resolveExpositionOptions(options, 'prometheusText');
  return renderFamilies(buildFamilies(metricsSnapshot(client, extras)), prefix);
}

module.exports = {
  prometheusText,
  resolveExpositionOptions,
  buildFamilies,
  CONTENT_TYPE,
};
