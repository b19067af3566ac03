'use strict';
// The API's Redis module, now hirecache's: one lazily connected client for the process.
module.exports = require('../../../../lib/redis'); // in an app: require('hirecache/redis')
