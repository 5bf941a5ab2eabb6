// @ts-check
// feedgate's browser client: FeedgateSocket, the WebSocket API over
// WebSocket, SSE, long polling or short polling with exactly-once
// delivery across them, and diagnose(), `feedgate doctor` from the
// browser. See clients/js/README.md.
//
//   import { FeedgateSocket } from '/feedgate.js';
//   const s = new FeedgateSocket('https://gw.example', 'prices');
//   s.onmessage = (e) => console.log(e.seq, JSON.parse(e.data));

export { FeedgateSocket } from './socket.js';
export { TRANSPORTS } from './options.js';
export { diagnose } from './doctor/diagnose.js';
export {
  FeedgateCloseEvent,
  FeedgateMessageEvent,
  GapEvent,
  ResetEvent,
  TopicErrorEvent,
  TransportChangeEvent,
} from './events.js';

/** @typedef {import('./options.js').FeedgateOptions} FeedgateOptions */
/** @typedef {import('./options.js').Transport} Transport */
/** @typedef {import('./options.js').CursorInput} CursorInput */
/** @typedef {import('./options.js').TokenSource} TokenSource */
/** @typedef {import('./events.js').FeedgateEvent} FeedgateEvent */
/** @typedef {import('./events.js').FeedgateSocketEventMap} FeedgateSocketEventMap */
/** @typedef {import('./events.js').SwitchCause} SwitchCause */
/** @typedef {import('./socket.js').Published} Published */
/** @typedef {import('./doctor/diagnose.js').DiagnoseOptions} DiagnoseOptions */
/** @typedef {import('./doctor/diagnose.js').Diagnosis} Diagnosis */
/** @typedef {import('./doctor/verdicts.js').TransportReport} TransportReport */
/** @typedef {import('./doctor/verdicts.js').Verdict} Verdict */
