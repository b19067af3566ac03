'use strict';
// The `tls` option: Node's tls.connect names, validated here and handed to the native
// client, which verifies the server with OpenSSL (src/client/tls.cc). Verification is on
// unless rejectUnauthorized: false (or NODE_TLS_REJECT_UNAUTHORIZED=0, which Node's own
// tls honours too) says otherwise; asking for TLS never falls back to plaintext.
const fs = require('fs');
const { ConfigError, UnsupportedError } = require('../errors');
const { invalidParameterError, checkType } = require('../util/validate');

const OPTION = { code: 'ERR_INVALID_CONFIG' };

const VERSIONS = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };
// Node's names for versions OpenSSL 3 refuses at its default security level.
const OBSOLETE_VERSIONS = ['TLSv1', 'TLSv1.1'];

// What `tls` takes, with tls.connect's meaning.
const KNOWN = ['ca', 'cert', 'key', 'passphrase', 'servername', 'rejectUnauthorized', 'minVersion', 'maxVersion'];
// tls.connect names users bring along that hirecache does not take, and what to do instead.
const REFUSED = {
  checkServerIdentity: 'the server name is checked by OpenSSL against servername (or the host); give servername to check another name',
  secureContext: 'give ca, cert and key instead',
  pfx: 'give cert and key as PEM instead',
  ciphers: 'OpenSSL\'s default cipher list is used',
  ecdhCurve: 'OpenSSL\'s default groups are used',
  ALPNProtocols: 'Redis does not negotiate ALPN',
  session: 'sessions are not resumed',
  crl: 'revocation lists are not checked',
  secureProtocol: 'use minVersion and maxVersion',
  secureOptions: 'use minVersion and maxVersion',
  sigalgs: 'OpenSSL\'s default signature algorithms are used',
  host: 'give the host in the URL or the host option',
  port: 'give the port in the URL or the port option',
  socket: 'hirecache opens its own socket',
  requestCert: 'a client verifies the server always',
};

// Node's own roots, the trust store of last resort where the system has none (a distroless
// image): handed to the addon by the first TLS client of this thread, which keeps them for
// every later one, and parsed only where needed.
let rootsHandedOver = false;
// NODE_EXTRA_CA_CERTS: the file, once checked to be readable (null: not checked yet).
let extraCaFile = null;
let warnedUnverified = false;

function pemText(name, value, { list = true } = {}) {
  const parts = list && Array.isArray(value) ? value : [value];
  const texts = parts.map((part, i) => {
    const where = parts.length > 1 || Array.isArray(value) ? `${name}[${i}]` : name;
    if (Buffer.isBuffer(part)) return part.toString('latin1');
    if (typeof part === 'string') return part;
    const expected = list ? 'PEM text (a string or a Buffer, or an array of them)' : 'PEM text (a string or a Buffer)';
    throw invalidParameterError(`option ${where}`, expected, part, { ...OPTION, secret: name === 'tls.key' });
  });
  const text = texts.join('\n');
  if (!text.includes('-----BEGIN ')) {
    throw new ConfigError(
      `option ${name} must be PEM text (the file's contents, such as fs.readFileSync(path)), not a file name; it holds no "-----BEGIN" line`,
      'ERR_INVALID_CONFIG',
    );
  }
  return text;
}

function version(name, value) {
  if (OBSOLETE_VERSIONS.includes(value)) {
    throw new UnsupportedError(`option ${name} '${value}' is not supported: OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level; Redis speaks TLS 1.2 and 1.3`, 'ERR_UNSUPPORTED');
  }
  if (!Object.prototype.hasOwnProperty.call(VERSIONS, value)) {
    throw invalidParameterError(`option ${name}`, `one of ${Object.keys(VERSIONS).join(', ')}`, value, OPTION);
  }
  return VERSIONS[value];
}

/**
 * NODE_EXTRA_CA_CERTS when it names a readable file, else ''. Node warns about one it
 * cannot read and goes on without it; so does this (a process warning, once per file).
 */
function extraCaPath(env) {
  const file = env.NODE_EXTRA_CA_CERTS;
  if (!file) return '';
  if (extraCaFile === null || extraCaFile.file !== file) {
    let ok = true;
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch (err) {
      ok = false;
      process.emitWarning(`NODE_EXTRA_CA_CERTS names ${file}, which cannot be read (${err.code}); hirecache's TLS trusts the system's store without it`, { code: 'HIRECACHE_EXTRA_CA_UNREADABLE' });
    }
    extraCaFile = { file, ok };
  }
  return extraCaFile.ok ? file : '';
}

/**
 * The native client's TLS settings, or null for plaintext.
 * `option`: the tls option as given (undefined, null, false, true or an object);
 * `asked`: what asked for TLS besides it ('option url', 'REDIS_URL', 'REDIS_TLS'), or null.
 */
function resolveTls(option, asked, env) {
  if (option === false || option === null) {
    if (asked) {
      throw new ConfigError(
        `option tls is ${option} but ${asked} asks for TLS; hirecache never falls back to a plaintext connection`,
        'ERR_INVALID_CONFIG',
      );
    }
    return null;
  }
  if (option === undefined && !asked) return null;
  const given = option === undefined || option === true ? {} : option;
  if (typeof given !== 'object' || Array.isArray(given)) {
    throw invalidParameterError('option tls', 'true, false or an object of tls.connect options', option, { ...OPTION, secret: true });
  }
  for (const key of Object.keys(given)) {
    if (KNOWN.includes(key)) continue;
    if (Object.prototype.hasOwnProperty.call(REFUSED, key)) {
      throw new UnsupportedError(`option tls.${key} is not supported: ${REFUSED[key]}`, 'ERR_UNSUPPORTED');
    }
    const err = new TypeError(`unknown option tls.${key}; known: ${KNOWN.join(', ')}`);
    err.code = 'ERR_INVALID_CONFIG';
    throw err;
  }
  const out = {
    ca: '', extraCaFile: '', cert: '', key: '', passphrase: '', servername: '',
    rejectUnauthorized: env.NODE_TLS_REJECT_UNAUTHORIZED !== '0',
    minVersion: VERSIONS['TLSv1.2'],
    maxVersion: 0,
  };
  if (given.rejectUnauthorized !== undefined) {
    out.rejectUnauthorized = checkType('option tls.rejectUnauthorized', given.rejectUnauthorized, 'boolean', OPTION);
  }
  if (given.ca !== undefined && given.ca !== null) {
    out.ca = pemText('tls.ca', given.ca);
  } else {
    out.extraCaFile = extraCaPath(env);
  }
  if (given.cert !== undefined && given.cert !== null) out.cert = pemText('tls.cert', given.cert);
  if (given.key !== undefined && given.key !== null) out.key = pemText('tls.key', given.key, { list: false });
  if (given.passphrase !== undefined && given.passphrase !== null) {
    out.passphrase = checkType('option tls.passphrase', given.passphrase, 'string', { ...OPTION, secret: true });
  }
  if (given.servername !== undefined && given.servername !== null) {
    const name = checkType('option tls.servername', given.servername, 'string', OPTION);
    // eslint-disable-next-line no-control-regex -- a NUL would cut the name OpenSSL verifies
    if (name === '' || /[\x00-\x20\x7f/]/.test(name)) {
      throw invalidParameterError('option tls.servername', 'a host name', name, OPTION);
    }
    out.servername = name;
  }
  if (given.minVersion !== undefined) out.minVersion = version('tls.minVersion', given.minVersion);
  if (given.maxVersion !== undefined) out.maxVersion = version('tls.maxVersion', given.maxVersion);
  if (out.maxVersion !== 0 && out.maxVersion < out.minVersion) {
    throw new ConfigError(`option tls.maxVersion (${given.maxVersion}) is below tls.minVersion`, 'ERR_INVALID_CONFIG');
  }
  return out;
}

/**
 * The settings as the addon takes them: with Node's roots the first time a client relies on
 * the system's trust store (the addon keeps them for a system that has none).
 */
function nativeTls(settings) {
  if (settings === null || settings.ca !== '' || rootsHandedOver) return settings;
  rootsHandedOver = true;
  return { ...settings, fallbackCa: require('tls').rootCertificates.join('\n') };
}

/**
 * Logs, once per process, that a client does not verify the server it talks to over TLS.
 */
function warnIfUnverified(config, log) {
  if (config.tls === null || config.tls.rejectUnauthorized || warnedUnverified) return;
  warnedUnverified = true;
  log.write(
    'warn',
    'TLS certificate verification is off (tls.rejectUnauthorized: false, or NODE_TLS_REJECT_UNAUTHORIZED=0): ' +
      'the connection to Redis is encrypted, but anyone on the network path can impersonate the server',
  );
}

/** The settings without secrets, for client.options. */
function redactTls(settings) {
  if (settings === null) return null;
  const version = (n) => Object.keys(VERSIONS).find((k) => VERSIONS[k] === n) || '';
  return {
    ca: settings.ca ? 'given' : 'system',
    cert: settings.cert ? 'given' : '',
    key: settings.key ? '***' : '',
    passphrase: settings.passphrase ? '***' : '',
    servername: settings.servername,
    rejectUnauthorized: settings.rejectUnauthorized,
    minVersion: version(settings.minVersion),
    maxVersion: version(settings.maxVersion),
  };
}

module.exports = { resolveTls, nativeTls, warnIfUnverified, redactTls };
