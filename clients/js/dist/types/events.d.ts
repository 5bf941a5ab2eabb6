/** @typedef {import('./options.js').Transport} Transport */
/**
 * An event as the server publishes it. With `encoding: 'lean'` only
 * `topic` and `seq` are known (counted from the server's `next`).
 * @typedef {object} FeedgateEvent
 * @property {string} topic
 * @property {number} seq
 * @property {number} [time] publish time, µs since the Unix epoch
 * @property {unknown} [data] the published JSON value
 */
/**
 * What failed before a switch, as the server is told it (`POST
 * /telemetry/switch`): the transport left, the one now in use, the reason
 * observed, and a close code or how long the connection had lived.
 * @typedef {object} SwitchCause
 * @property {Transport} from
 * @property {Transport} to
 * @property {'refused' | 'stalled' | 'buffered' | 'cut' | 'closed' | 'timeout' | 'error' | 'climb'} reason
 * @property {number} [code]
 * @property {number} [after_s]
 */
/**
 * @typedef {object} FeedgateMessageEventInit
 * @property {string} data
 * @property {string} topic
 * @property {number} seq
 * @property {FeedgateEvent} event
 * @property {string} lastEventId the topic's cursor after this event
 * @property {string} origin
 */
/**
 * `message`: one event, exactly once and in order per topic. `data` is
 * the event's JSON text as the server sent it (the v1 event object, or
 * with `encoding: 'lean'` the published data alone); `lastEventId` the
 * topic's cursor (`EPOCH:SEQ`) after it.
 * @extends {MessageEvent<string>}
 */
export class FeedgateMessageEvent extends MessageEvent<string> {
    /** @param {FeedgateMessageEventInit} init */
    constructor({ data, topic, seq, event, lastEventId, origin }: FeedgateMessageEventInit);
    /** The event's topic. @readonly */
    readonly topic: string;
    /** The event's seq in its topic. @readonly */
    readonly seq: number;
    /** The event, parsed (lean: only `topic` and `seq`). @readonly */
    readonly event: FeedgateEvent;
}
/** `gap`: the server no longer retains some events after a topic's cursor. */
export class GapEvent extends Event {
    /**
     * @param {string} topic
     * @param {number} missed
     * @param {number} resumeSeq
     */
    constructor(topic: string, missed: number, resumeSeq: number);
    /** @readonly */
    readonly topic: string;
    /** How many events are lost. @readonly */
    readonly missed: number;
    /** The seq of the next event delivered. @readonly */
    readonly resumeSeq: number;
}
/** `reset`: a topic's cursor is from another epoch (a restarted log) or
 *  ahead of it; everything retained of that topic follows. */
export class ResetEvent extends Event {
    /**
     * @param {string} topic
     * @param {string} reason
     * @param {string} epoch
     */
    constructor(topic: string, reason: string, epoch: string);
    /** @readonly */
    readonly topic: string;
    /** `epoch_changed` or `ahead_of_head` (docs/protocol.md). @readonly */
    readonly reason: string;
    /** The log's epoch now. @readonly */
    readonly epoch: string;
}
/** `transportchange`: another transport proved itself and took over. */
export class TransportChangeEvent extends Event {
    /**
     * @param {Transport} transport
     * @param {Transport | null} previous
     * @param {'connect' | 'fallback' | 'upgrade'} reason
     * @param {[Transport, string, string][]} failures
     * @param {SwitchCause | null} cause
     */
    constructor(transport: Transport, previous: Transport | null, reason: "connect" | "fallback" | "upgrade", failures: [Transport, string, string][], cause: SwitchCause | null);
    /** The transport in use now. @readonly */
    readonly transport: import("./options.js").Transport;
    /** The one before, or null at the start. @readonly */
    readonly previous: import("./options.js").Transport | null;
    /** @readonly */
    readonly reason: "fallback" | "connect" | "upgrade";
    /** `[transport, why, reason]` of what was tried and failed first. @readonly */
    readonly failures: [import("./options.js").Transport, string, string][];
    /** What was reported to the server for this switch, or null. @readonly */
    readonly cause: SwitchCause | null;
}
/** `topicerror`: the server refused a WebSocket `subscribe` for good; the
 *  topic is dropped, the others go on. */
export class TopicErrorEvent extends Event {
    /**
     * @param {string} topic
     * @param {string} code
     * @param {string} message
     */
    constructor(topic: string, code: string, message: string);
    /** @readonly */
    readonly topic: string;
    /** `invalid_topic`, `invalid_cursor`, `too_many_topics`, `forbidden` or `unauthorized`. @readonly */
    readonly code: string;
    /** @readonly */
    readonly message: string;
}
/** `close`: the socket stopped, on `close()` or after a fatal answer. */
export class FeedgateCloseEvent extends Event {
    /**
     * @param {number} code 1000 after `close()`, `4000 + status` after a
     *   400/401/403 answer
     * @param {string} reason
     * @param {boolean} wasClean
     */
    constructor(code: number, reason: string, wasClean: boolean);
    /** @readonly */
    readonly code: number;
    /** @readonly */
    readonly reason: string;
    /** @readonly */
    readonly wasClean: boolean;
}
export type Transport = import("./options.js").Transport;
/**
 * An event as the server publishes it. With `encoding: 'lean'` only
 * `topic` and `seq` are known (counted from the server's `next`).
 */
export type FeedgateEvent = {
    topic: string;
    seq: number;
    /**
     * publish time, µs since the Unix epoch
     */
    time?: number | undefined;
    /**
     * the published JSON value
     */
    data?: unknown;
};
/**
 * What failed before a switch, as the server is told it (`POST
 * /telemetry/switch`): the transport left, the one now in use, the reason
 * observed, and a close code or how long the connection had lived.
 */
export type SwitchCause = {
    from: Transport;
    to: Transport;
    reason: "refused" | "stalled" | "buffered" | "cut" | "closed" | "timeout" | "error" | "climb";
    code?: number | undefined;
    after_s?: number | undefined;
};
export type FeedgateMessageEventInit = {
    data: string;
    topic: string;
    seq: number;
    event: FeedgateEvent;
    /**
     * the topic's cursor after this event
     */
    lastEventId: string;
    origin: string;
};
/**
 * The events of a FeedgateSocket by type.
 */
export type FeedgateSocketEventMap = {
    open: Event;
    message: FeedgateMessageEvent;
    gap: GapEvent;
    reset: ResetEvent;
    transportchange: TransportChangeEvent;
    topicerror: TopicErrorEvent;
    error: Event;
    close: FeedgateCloseEvent;
};
