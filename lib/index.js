'use strict';
// hirecache: re-exports only. See README.md.
module.exports = {
  ...require('./redis'),
  ...require('./cache'),
  ...require('./ratelimit'),
  ...require('./health'),
  ...require('./metrics'),
};
