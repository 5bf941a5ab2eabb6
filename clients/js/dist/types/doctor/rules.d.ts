/**
 * @typedef {object} Rules
 * @property {number} late_s
 * @property {number} slow_s
 * @property {number} bunched_share
 * @property {number} buffered_share
 * @property {number} keepalive_slack_s
 * @property {number} hold_slack_s
 * @property {number} slow_rtt_ms
 */
/** @type {Readonly<Rules>} */
export const RULES: Readonly<Rules>;
export type Rules = {
    late_s: number;
    slow_s: number;
    bunched_share: number;
    buffered_share: number;
    keepalive_slack_s: number;
    hold_slack_s: number;
    slow_rtt_ms: number;
};
