/**
 * Where to start in `transports`: the index of the one remembered for the
 * server at `url`, else 0.
 * @param {string} url
 * @param {readonly string[]} transports
 */
export function recall(url: string, transports: readonly string[]): number;
/**
 * @param {string} url
 * @param {string} transport
 */
export function remember(url: string, transport: string): void;
