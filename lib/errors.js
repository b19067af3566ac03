'use strict';
// Error classes of hirecache. Every error has a stable `code`; server replies (ReplyError)
// are told apart from client states (connection, timeout, outcome unknown, queue full,
// closed). Messages never carry a password.

class HirecacheError extends Error {
  constructor(message, code) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The server answered with an error reply; `code` is its first word (WRONGTYPE, NOSCRIPT, ERR…). */
class ReplyError extends HirecacheError {}

/** Redis could not be reached or the connection failed (ECONNREFUSED, ENOTFOUND, ETIMEDOUT…). */
class ConnectionError extends HirecacheError {}

/**
 * TLS refused the server or broke down: the certificate is not trusted
 * (DEPTH_ZERO_SELF_SIGNED_CERT, UNABLE_TO_VERIFY_LEAF_SIGNATURE…), has expired
 * (CERT_HAS_EXPIRED), names another host (ERR_TLS_CERT_ALTNAME_INVALID), the handshake failed
 * (ERR_TLS_HANDSHAKE, or OpenSSL's reason as ERR_SSL_…, e.g. a refused protocol version).
 * A kind of ConnectionError.
 */
class TlsError extends ConnectionError {}

/** The command's deadline (commandTimeout) passed before its reply arrived. Code ETIMEDOUT. */
class CommandTimeoutError extends HirecacheError {}

/**
 * The command was written, then the connection died before its reply arrived: it may or may
 * not have run. hirecache never resends it. Code ERR_OUTCOME_UNKNOWN.
 */
class OutcomeUnknownError extends HirecacheError {}

/** Too many commands were waiting to be sent. Code ERR_QUEUE_FULL. */
class QueueFullError extends HirecacheError {}

/** The client was closed with quit() or disconnect(). Code ERR_CLIENT_CLOSED. */
class ClientClosedError extends HirecacheError {}

/** Redis sent bytes that are not valid RESP. Code ERR_PROTOCOL. */
class ProtocolError extends HirecacheError {}

/** A configuration value (environment variable or option) is invalid. Code ERR_INVALID_CONFIG. */
class ConfigError extends HirecacheError {}

/** A feature or option that this version does not support was asked for. Code ERR_UNSUPPORTED. */
class UnsupportedError extends HirecacheError {}

/**
 * A command that would change the shared connection's state (MULTI, SUBSCRIBE, SELECT…) was
 * refused; the message names the API to use instead. Code ERR_COMMAND_REFUSED.
 */
class CommandRefusedError extends HirecacheError {}

const byKind = {
  reply: ReplyError,
  connection: ConnectionError,
  tls: TlsError,
  timeout: CommandTimeoutError,
  'outcome-unknown': OutcomeUnknownError,
  'queue-full': QueueFullError,
  closed: ClientClosedError,
  protocol: ProtocolError,
};

/**
 * Called by the native client to build the error for a failed command, or (kind 'range')
 * for an argument it refuses, so that every error belongs to this module's realm.
 */
function nativeError(kind, code, message) {
  if (kind === 'range') {
    const err = new RangeError(message);
    err.code = code;
    return err;
  }
  const Class = byKind[kind] || HirecacheError;
  return new Class(code in EXPLAINED ? `${message} (${EXPLAINED[code]})` : message, code);
}

// Cluster error replies whose text leaves a user guessing: what they mean, and what to do.
const EXPLAINED = {
  CROSSSLOT: 'in a Redis Cluster the keys of one command, transaction or script must share a hash slot: '
    + 'give them a common {hash tag}, as in {user:1}:name and {user:1}:mail. MGET, DEL, UNLINK, EXISTS and '
    + 'TOUCH are split by slot for you',
  CLUSTERDOWN: 'the cluster cannot serve this slot now (a failover in progress, or no primary for it); '
    + 'retried within the command\'s deadline before this error',
};

module.exports = {
  HirecacheError,
  ReplyError,
  ConnectionError,
  TlsError,
  CommandTimeoutError,
  OutcomeUnknownError,
  QueueFullError,
  ClientClosedError,
  ProtocolError,
  ConfigError,
  UnsupportedError,
  CommandRefusedError,
  nativeError,
};
