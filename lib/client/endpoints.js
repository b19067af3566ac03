'use strict';
// "host:port" as the cluster's seed nodes and the sentinels are written
// (REDIS_CLUSTER_NODES, REDIS_SENTINELS, the options), one parser for both.

// host:port, [ipv6]:port, or a host alone (the default port).
const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s/@[\]]+))(?::(\d{1,5}))?$/;

/**
 * { host, port } from `text`, or null when it is not host[:port] with a port from 1 to 65535.
 * A host alone takes `defaultPort`.
 */
function parseHostPort(text, defaultPort) {
  const m = HOST_PORT.exec(String(text).trim());
  const port = m && m[3] !== undefined ? Number(m[3]) : defaultPort;
  if (m === null || port < 1 || port > 65535) return null;
  return { host: m[1] || m[2], port };
}

module.exports = { parseHostPort };
