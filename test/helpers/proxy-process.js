'use strict';
// The fault-injection proxy in a child process of its own, for faults that must happen
// while the process under test is busy (its event loop blocked): the child keeps
// forwarding, cutting or resetting meanwhile.
//   const proxy = await startProxyProcess(redisPort);
//   await proxy.do('reset');   // any method of test/helpers/proxy.js
//   proxy.stop();
const { fork } = require('child_process');

if (require.main === module) {
  const { createProxy } = require('./proxy');
  createProxy({ port: Number(process.argv[2]) }).then((proxy) => {
    process.on('message', ({ id, method, args }) => {
      Promise.resolve(proxy[method](...(args || []))).then(() => process.send({ id }));
    });
    process.send({ ready: proxy.port });
  });
} else {
  module.exports.startProxyProcess = function startProxyProcess(targetPort) {
    return new Promise((resolve, reject) => {
      const child = fork(__filename, [String(targetPort)], { stdio: 'ignore' });
      let next = 0;
      const waiting = new Map();
      child.on('message', (m) => {
        if (m.ready) {
          resolve({
            port: m.ready,
            url: `redis://127.0.0.1:${m.ready}`,
            do(method, ...args) {
              const id = ++next;
              child.send({ id, method, args });
              return new Promise((done) => waiting.set(id, done));
            },
            stop() {
              child.kill();
            },
          });
        } else if (waiting.has(m.id)) {
          waiting.get(m.id)();
          waiting.delete(m.id);
        }
      });
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`proxy process exited (${code})`)));
    });
  };
}
