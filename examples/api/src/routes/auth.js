'use strict';
// Login, limited per client IP and per e-mail address, as the API did with
// rate-limiter-flexible before: the limiters come from hirecache now.
const express = require('express');
const { createLimiter, rateLimitByIp, rateLimitByKey } = require('../lib/ratelimit');

const loginByIp = createLimiter({ keyPrefix: 'rl:login:ip', points: 20, duration: 600 });
const loginByEmail = createLimiter({ keyPrefix: 'rl:login:email', points: 5, duration: 600 });

const router = express.Router();

router.post(
  '/login',
  rateLimitByIp(loginByIp),
  rateLimitByKey(loginByEmail, (req) => (req.body && typeof req.body.email === 'string' ? req.body.email.toLowerCase() : undefined)),
  (req, res) => {
    // A real API checks the password here; the example accepts "demo".
    if (req.body.password === 'demo') return res.json({ ok: true });
    return res.status(401).json({ error: 'invalid credentials' });
  },
);

module.exports = router;
