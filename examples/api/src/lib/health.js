'use strict';
// The API's health module: hirecache's report and its GET /health, /health/live and
// /health/ready handlers.
const { health, healthRouter } = require('../../../../lib/health'); // in an app: require('hirecache')

module.exports = { health, healthRouter };
