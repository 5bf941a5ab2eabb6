// @ts-check
// The verdict rules of `feedgate doctor`, from the fixture that
// src/doctor/verdict.rs reads too, so the terminal and the browser judge
// a path alike.

import fixture from './verdicts.json' with { type: 'json' };

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
export const RULES = fixture.rules;
