'use strict';
// hirecache/cache: the drop-in lib/cache.js (cacheGet, cacheSet, cacheDelPrefix…). The
// implementation lives in lib/cache/.
module.exports = require('./cache/cache');
