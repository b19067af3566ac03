/** Base class of every hirecache error; `code` is stable across versions. */
export class HirecacheError extends Error {
  constructor(message: string, code: string);
  readonly code: string;
}
/** The server answered with an error reply; `code` is its first word (WRONGTYPE, NOSCRIPT, ERR…). */
export class ReplyError extends HirecacheError {}
/** Redis could not be reached or the connection failed: ECONNREFUSED, ENOTFOUND, ETIMEDOUT, ECONNRESET, WRONGPASS… */
export class ConnectionError extends HirecacheError {}
/**
 * TLS refused the server or broke down. Codes: CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID
 * (the certificate names another host), DEPTH_ZERO_SELF_SIGNED_CERT / SELF_SIGNED_CERT_IN_CHAIN /
 * UNABLE_TO_VERIFY_LEAF_SIGNATURE / UNABLE_TO_GET_ISSUER_CERT_LOCALLY (not trusted),
 * ERR_TLS_HANDSHAKE (closed during the handshake), ERR_SSL_* (OpenSSL's reason, e.g. a refused
 * protocol version or a missing client certificate).
 */
export class TlsError extends ConnectionError {}
/** The command's deadline passed before its reply arrived (code ETIMEDOUT). */
export class CommandTimeoutError extends HirecacheError {}
/** The command was written, then the connection died: it may or may not have run (code ERR_OUTCOME_UNKNOWN). */
export class OutcomeUnknownError extends HirecacheError {}
/** Too many commands were waiting to be sent (code ERR_QUEUE_FULL). */
export class QueueFullError extends HirecacheError {}
/** The client was closed (code ERR_CLIENT_CLOSED). */
export class ClientClosedError extends HirecacheError {}
/** Redis sent bytes that are not valid RESP (code ERR_PROTOCOL). */
export class ProtocolError extends HirecacheError {}
/** A configuration value is invalid (code ERR_INVALID_CONFIG, or ERR_REDIS_DISABLED). */
export class ConfigError extends HirecacheError {}
/** A feature or option this version does not support was asked for (code ERR_UNSUPPORTED). */
export class UnsupportedError extends HirecacheError {}
/** A command that would change the shared connection's state was refused; the message names the API to use instead. Code ERR_COMMAND_REFUSED. */
export class CommandRefusedError extends HirecacheError {}
