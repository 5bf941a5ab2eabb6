/**
 * A control message, as the server sends it.
 * @typedef {object} Control
 * @property {string} [type]
 * @property {string} [topic]
 * @property {string} [epoch]
 * @property {number} [next]
 * @property {number} [missed]
 * @property {number} [resume_seq]
 * @property {string} [reason]
 * @property {string} [code]
 * @property {string} [message]
 * @property {number} [seq] an event's
 */
export class WsConn extends Connection {
    #private;
}
/**
 * A control message, as the server sends it.
 */
export type Control = {
    type?: string | undefined;
    topic?: string | undefined;
    epoch?: string | undefined;
    next?: number | undefined;
    missed?: number | undefined;
    resume_seq?: number | undefined;
    reason?: string | undefined;
    code?: string | undefined;
    message?: string | undefined;
    /**
     * an event's
     */
    seq?: number | undefined;
};
import { Connection } from './connection.js';
