/**
 * @template E
 * @typedef {((this: FeedgateSocket, ev: E) => any) | null} Handler
 */
/**
 * A feedgate subscription with the browser WebSocket API, to one topic or
 * to many over one connection.
 *
 * Events: `open` (once, when the first transport has proved it delivers),
 * `message` (one per event, exactly once and in order per topic), `close`,
 * `error` (only before a fatal close), and `gap`, `reset` (per topic),
 * `transportchange` and `topicerror`. Each has an `on…` handler property,
 * as on WebSocket. While it switches or reconnects transports,
 * `readyState` stays `OPEN`: nothing is lost meanwhile, since it resumes
 * from its cursors.
 */
export class FeedgateSocket extends EventTarget {
    static CONNECTING: 0;
    static OPEN: 1;
    static CLOSING: 2;
    static CLOSED: 3;
    /**
     * @param {string} url the server's base URL (`https://gw.example`, or
     *   relative to the page, e.g. `/`)
     * @param {string | readonly string[]} topics one topic
     *   (`/topics/{topic}/…`, the v1 endpoints), or an array of topics
     *   followed over one connection (`/ws?topics=…`, …), each `TOPIC` or
     *   `TOPIC@CURSOR`
     * @param {FeedgateOptions} [options]
     * @throws {SyntaxError} on a URL that is not http(s), a bad topic or
     *   cursor, a topic listed twice, no known transport
     */
    constructor(url: string, topics: string | readonly string[], options?: FeedgateOptions);
    /** @type {Handler<Event>} */ onopen: Handler<Event>;
    /** @type {Handler<FeedgateMessageEvent>} */ onmessage: Handler<FeedgateMessageEvent>;
    /** @type {Handler<FeedgateCloseEvent>} */ onclose: Handler<FeedgateCloseEvent>;
    /** @type {Handler<Event>} */ onerror: Handler<Event>;
    /** @type {Handler<GapEvent>} */ ongap: Handler<GapEvent>;
    /** @type {Handler<ResetEvent>} */ onreset: Handler<ResetEvent>;
    /** @type {Handler<TransportChangeEvent>} */ ontransportchange: Handler<TransportChangeEvent>;
    /** @type {Handler<TopicErrorEvent>} */ ontopicerror: Handler<TopicErrorEvent>;
    /** @type {0 | 1 | 2 | 3} */
    readyState: 0 | 1 | 2 | 3;
    /** As on WebSocket: always empty. */
    protocol: string;
    /** As on WebSocket: always empty. */
    extensions: string;
    /** As on WebSocket: always 0 (send() does not queue). */
    bufferedAmount: number;
    /** As on WebSocket; events are text. */
    binaryType: string;
    /** The transport in use, or null before the first proved itself.
     *  @type {Transport | null} */
    transport: Transport | null;
    /** The one topic (v1 endpoints), or null when following several.
     *  @type {string | null} */
    topic: string | null;
    /** The server's base URL, without a trailing `/`. */
    url: string;
    get CONNECTING(): 0;
    get OPEN(): 1;
    get CLOSING(): 2;
    get CLOSED(): 3;
    /** The topics followed, in the order they were added. */
    get topics(): string[];
    /**
     * Where it stands. One topic: the cursor of the last delivered event,
     * `EPOCH:SEQ`, or null. Several: the LIST it would reconnect with
     * (`a@EPOCH:SEQ,b,…`).
     * @returns {string | null}
     */
    get cursor(): string | null;
    /** The seq of the last delivered event (one topic; null with several). */
    get lastSeq(): number | null;
    /**
     * A topic's cursor (`EPOCH:SEQ`), or null when it has none yet.
     * @param {string} topic
     */
    cursorOf(topic: string): string | null;
    /**
     * Follows one more topic, over the same connection: from `cursor`
     * (`0`, `N` or `EPOCH:N`; omitted: from now). On WebSocket it is a
     * `subscribe` message; on SSE and polls a new request with the new LIST,
     * from every topic's cursor. A socket made for one topic becomes a
     * multiplexed one. Returns false when the topic is followed already.
     * @param {string} topic
     * @param {import('./options.js').CursorInput} [cursor]
     * @throws {SyntaxError} on a bad topic or cursor
     * @throws {DOMException} `InvalidStateError` once closed
     */
    subscribe(topic: string, cursor?: import("./options.js").CursorInput): boolean;
    /**
     * Stops following a topic: none of its events is delivered after this
     * call. Its cursor is forgotten (subscribing again starts where that
     * subscribe says). Returns false when it was not followed.
     * @param {string} topic
     */
    unsubscribe(topic: string): boolean;
    /**
     * Publishes one JSON value (`POST /topics/{topic}/events`) to `topic`,
     * by default the socket's one topic (a socket following several must
     * name it). A string is sent as is (it must be JSON, as `JSON.stringify`
     * makes it); anything else is JSON-encoded. Rejected on failure; not
     * awaiting it is fine (no unhandled rejection).
     * @param {unknown} data
     * @param {string | null} [topic]
     * @returns {Promise<Published>}
     */
    send(data: unknown, topic?: string | null): Promise<Published>;
    /**
     * Closes the subscription. `close` fires (asynchronously) once.
     * @param {number} [code]
     * @param {string} [reason]
     */
    close(code?: number, reason?: string): void;
    /**
     * @template {keyof FeedgateSocketEventMap} K
     * @overload
     * @param {K} type
     * @param {(this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any} listener
     * @param {boolean | AddEventListenerOptions} [options]
     * @returns {void}
     */
    addEventListener<K extends keyof FeedgateSocketEventMap>(type: K, listener: (this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any, options?: boolean | AddEventListenerOptions | undefined): void;
    /**
     * @overload
     * @param {string} type
     * @param {EventListenerOrEventListenerObject | null} listener
     * @param {boolean | AddEventListenerOptions} [options]
     * @returns {void}
     */
    addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions | undefined): void;
    /**
     * @template {keyof FeedgateSocketEventMap} K
     * @overload
     * @param {K} type
     * @param {(this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any} listener
     * @param {boolean | EventListenerOptions} [options]
     * @returns {void}
     */
    removeEventListener<K extends keyof FeedgateSocketEventMap>(type: K, listener: (this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any, options?: boolean | EventListenerOptions | undefined): void;
    /**
     * @overload
     * @param {string} type
     * @param {EventListenerOrEventListenerObject | null} listener
     * @param {boolean | EventListenerOptions} [options]
     * @returns {void}
     */
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions | undefined): void;
    #private;
}
export type FeedgateOptions = import("./options.js").FeedgateOptions;
export type Settings = import("./options.js").Settings;
export type Transport = import("./options.js").Transport;
export type TokenSource = import("./options.js").TokenSource;
export type FeedgateEvent = import("./events.js").FeedgateEvent;
export type FeedgateSocketEventMap = import("./events.js").FeedgateSocketEventMap;
export type Failure = import("./telemetry.js").Failure;
export type Host = import("./conn/connection.js").Host;
/**
 * What `send()` resolves to: where the server appended the event.
 */
export type Published = {
    topic: string;
    seq: number;
    epoch: string;
};
export type Handler<E> = ((this: FeedgateSocket, ev: E) => any) | null;
import { FeedgateMessageEvent } from './events.js';
import { FeedgateCloseEvent } from './events.js';
import { GapEvent } from './events.js';
import { ResetEvent } from './events.js';
import { TransportChangeEvent } from './events.js';
import { TopicErrorEvent } from './events.js';
