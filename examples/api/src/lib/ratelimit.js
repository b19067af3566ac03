'use strict';
// The API's rate-limit module, now hirecache's: createLimiter / rateLimitByIp / rateLimitByKey.
module.exports = require('../../../../lib/ratelimit'); // in an app: require('hirecache/ratelimit')
