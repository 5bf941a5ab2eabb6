/**
 * The seq in an event's `id:` on a one-topic stream: `SEQ` (lean) or
 * `EPOCH:SEQ` (json); null when it is neither (a LIST, or nothing).
 * @param {string} id
 */
export function idSeq(id: string): number | null;
export class SseConn extends Connection {
    #private;
}
import { Connection } from './connection.js';
