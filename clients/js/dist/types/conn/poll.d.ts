export class PollConn extends Connection {
    #private;
}
export type FeedgateEvent = import("../events.js").FeedgateEvent;
/**
 * A topic's part of a poll answer.
 */
export type Place = {
    epoch: string;
    next: number;
    gap?: {
        missed: number;
        resume_seq: number;
    } | undefined;
    reset?: {
        reason: string;
        epoch: string;
    } | undefined;
    /**
     * lean, multiplexed: the topic's events
     */
    events?: unknown[] | undefined;
};
import { Connection } from './connection.js';
