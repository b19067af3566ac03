'use strict';
// Campaign statistics, cached for 30 s per owner and campaign; a webhook drops an owner's
// cached statistics by prefix. The route code is what an API had before hirecache.
const express = require('express');
const { cacheGet, cacheSet, cacheDelPrefix } = require('../lib/cache');

const router = express.Router();

// Stands in for a slow database aggregate.
async function computeStats(ownerId, id) {
  await new Promise((resolve) => setTimeout(resolve, 25));
  let seed = 0;
  for (const ch of `${ownerId}:${id}`) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  return { ownerId, id, sent: seed % 10000, opened: seed % 4000, clicked: seed % 900, computedAt: new Date().toISOString() };
}

router.get('/owners/:ownerId/campaigns/:id/stats', async (req, res, next) => {
  try {
    const { ownerId, id } = req.params;
    const key = `cache:stats:campaign:v1:${ownerId}:${id}`;
    const hit = await cacheGet(key);
    if (hit) return res.set('X-Cache', 'hit').json(JSON.parse(hit));
    const data = await computeStats(ownerId, id);
    await cacheSet(key, JSON.stringify(data), 30);
    return res.set('X-Cache', 'miss').json(data);
  } catch (err) {
    return next(err);
  }
});

router.post('/webhooks/owners/:ownerId/campaigns', async (req, res, next) => {
  try {
    const deleted = await cacheDelPrefix(`cache:stats:campaign:v1:${req.params.ownerId}:`);
    res.json({ invalidated: deleted });
  } catch (err) {
    next(err);
  }
});

module.exports = router;
