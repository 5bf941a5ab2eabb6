// @ts-check
// The events a FeedgateSocket dispatches, with typed fields.

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
export class FeedgateMessageEvent extends MessageEvent {
  /** @param {FeedgateMessageEventInit} init */
  constructor({ data, topic, seq, event, lastEventId, origin }) {
    super('message', { data, lastEventId, origin });
    /** The event's topic. @readonly */
    this.topic = topic;
    /** The event's seq in its topic. @readonly */
    this.seq = seq;
    /** The event, parsed (lean: only `topic` and `seq`). @readonly */
    this.event = event;
  }
}

/** `gap`: the server no longer retains some events after a topic's cursor. */
export class GapEvent extends Event {
  /**
   * @param {string} topic
   * @param {number} missed
   * @param {number} resumeSeq
   */
  constructor(topic, missed, resumeSeq) {
    super('gap');
    /** @readonly */
    this.topic = topic;
    /** How many events are lost. @readonly */
    this.missed = missed;
    /** The seq of the next event delivered. @readonly */
    this.resumeSeq = resumeSeq;
  }
}

/** `reset`: a topic's cursor is from another epoch (a restarted log) or
 *  ahead of it; everything retained of that topic follows. */
export class ResetEvent extends Event {
  /**
   * @param {string} topic
   * @param {string} reason
   * @param {string} epoch
   */
  constructor(topic, reason, epoch) {
    super('reset');
    /** @readonly */
    this.topic = topic;
    /** `epoch_changed` or `ahead_of_head` (docs/protocol.md). @readonly */
    this.reason = reason;
    /** The log's epoch now. @readonly */
    this.epoch = epoch;
  }
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
  constructor(transport, previous, reason, failures, cause) {
    super('transportchange');
    /** The transport in use now. @readonly */
    this.transport = transport;
    /** The one before, or null at the start. @readonly */
    this.previous = previous;
    /** @readonly */
    this.reason = reason;
    /** `[transport, why, reason]` of what was tried and failed first. @readonly */
    this.failures = failures;
    /** What was reported to the server for this switch, or null. @readonly */
    this.cause = cause;
  }
}

/** `topicerror`: the server refused a WebSocket `subscribe` for good; the
 *  topic is dropped, the others go on. */
export class TopicErrorEvent extends Event {
  /**
   * @param {string} topic
   * @param {string} code
   * @param {string} message
   */
  constructor(topic, code, message) {
    super('topicerror');
    /** @readonly */
    this.topic = topic;
    /** `invalid_topic`, `invalid_cursor`, `too_many_topics`, `forbidden` or `unauthorized`. @readonly */
    this.code = code;
    /** @readonly */
    this.message = message;
  }
}

/** `close`: the socket stopped, on `close()` or after a fatal answer. */
export class FeedgateCloseEvent extends Event {
  /**
   * @param {number} code 1000 after `close()`, `4000 + status` after a
   *   400/401/403 answer
   * @param {string} reason
   * @param {boolean} wasClean
   */
  constructor(code, reason, wasClean) {
    super('close');
    /** @readonly */
    this.code = code;
    /** @readonly */
    this.reason = reason;
    /** @readonly */
    this.wasClean = wasClean;
  }
}

/**
 * The events of a FeedgateSocket by type.
 * @typedef {object} FeedgateSocketEventMap
 * @property {Event} open
 * @property {FeedgateMessageEvent} message
 * @property {GapEvent} gap
 * @property {ResetEvent} reset
 * @property {TransportChangeEvent} transportchange
 * @property {TopicErrorEvent} topicerror
 * @property {Event} error
 * @property {FeedgateCloseEvent} close
 */
