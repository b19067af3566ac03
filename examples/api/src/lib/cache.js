'use strict';
// The API's cache module, now hirecache's: cacheGet / cacheSet / cacheDelPrefix keep their meaning.
module.exports = require('../../../../lib/cache'); // in an app: require('hirecache/cache')
