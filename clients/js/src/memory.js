// @ts-check
// The last transport that worked, kept in sessionStorage so that a reload
// does not repeat failed probes.

const PREFIX = 'feedgate.transport:';

/**
 * Where to start in `transports`: the index of the one remembered for the
 * server at `url`, else 0.
 * @param {string} url
 * @param {readonly string[]} transports
 */
export function recall(url, transports) {
  try {
    const i = transports.indexOf(globalThis.sessionStorage?.getItem(PREFIX + url) ?? '');
    return i < 0 ? 0 : i;
  } catch {
    return 0; // storage disabled
  }
}

/**
 * @param {string} url
 * @param {string} transport
 */
export function remember(url, transport) {
  try {
    globalThis.sessionStorage?.setItem(PREFIX + url, transport);
  } catch {
    // storage disabled or full: only the optimisation is lost
  }
}
