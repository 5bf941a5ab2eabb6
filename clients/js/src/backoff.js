// @ts-check
// How long to wait before reconnecting.

/**
 * The wait before reconnect round `round` (1, 2, …): a delay doubling from
 * `min` up to `max`, with "full jitter" (a random wait between 0 and the
 * delay, so that many clients failing together spread out), and at least
 * what a Retry-After asked for (capped by `max` too).
 * @param {number} round failed rounds in a row
 * @param {number} min first delay, ms
 * @param {number} max cap, ms
 * @param {number} retryAfter ms the server asked for since the last wait (0: none)
 * @param {() => number} [random] in [0, 1)
 */
export function backoff(round, min, max, retryAfter, random = Math.random) {
  const d = Math.min(max, min * 2 ** Math.max(0, round - 1));
  return Math.max(random() * d, Math.min(retryAfter, max));
}

/**
 * The wait before reconnecting to a server that drained for a restart:
 * its own delay when it gave one (drawn per client already), else a random
 * one in [0, spread], so its clients do not all come back at once.
 * @param {number | null} serverDelay ms, or null
 * @param {number} spread ms
 * @param {() => number} [random]
 */
export function restartDelay(serverDelay, spread, random = Math.random) {
  return serverDelay ?? random() * spread;
}
