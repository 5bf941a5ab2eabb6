// An application of the package, type-checked in CI (`npm run typecheck`,
// scripts/js-test.sh) against the declarations the package exports: every
// public type is used, and the `@ts-expect-error` lines prove the types
// are not `any`.

import {
  FeedgateSocket,
  TRANSPORTS,
  diagnose,
  type Diagnosis,
  type FeedgateEvent,
  type FeedgateMessageEvent,
  type FeedgateOptions,
  type Published,
  type Transport,
} from 'feedgate';

const options: FeedgateOptions = {
  transports: ['ws', 'sse', 'longpoll'],
  probeTimeout: 2500,
  after: { prices: 0, news: '9f2c4e01a7b3d5e8:17' },
  token: async () => 'a.jwt.token',
  encoding: 'lean',
};

const socket = new FeedgateSocket(location.origin, ['prices', 'news@0'], options);
const single = new FeedgateSocket('https://gw.example', 'prices');

socket.onmessage = (e) => {
  const topic: string = e.topic;
  const seq: number = e.seq;
  const text: string = e.data;
  const event: FeedgateEvent = e.event;
  const cursor: string = e.lastEventId;
  console.log(topic, seq, JSON.parse(text), event.time ?? 'lean', cursor);
};
socket.addEventListener('gap', (e) => console.warn(`${e.topic}: ${e.missed} missed, resuming at ${e.resumeSeq}`));
socket.addEventListener('reset', (e) => console.warn(e.topic, e.reason, e.epoch.length));
socket.addEventListener('transportchange', (e) => {
  const now: Transport = e.transport;
  const before: Transport | null = e.previous;
  const why: 'connect' | 'fallback' | 'upgrade' = e.reason;
  for (const [t, what, reason] of e.failures) console.log(t, what, reason);
  console.log(now, before, why, e.cause?.reason, e.cause?.after_s);
});
socket.addEventListener('topicerror', (e) => console.error(e.topic, e.code, e.message));
socket.addEventListener('open', () => console.log('open via', socket.transport));
socket.addEventListener('close', (e) => console.log(e.code, e.reason, e.wasClean));
socket.addEventListener('error', (e) => console.log(e.type));
socket.addEventListener('message', function (this: FeedgateSocket, e: FeedgateMessageEvent) {
  console.log(this.cursorOf(e.topic));
});

const added: boolean = socket.subscribe('alerts', 0);
const dropped: boolean = socket.unsubscribe('news');
const topics: string[] = socket.topics;
const list: string | null = socket.cursor;
const state: 0 | 1 | 2 | 3 = socket.readyState;
const open: boolean = state === FeedgateSocket.OPEN;
console.log(added, dropped, topics, list, open, single.lastSeq, TRANSPORTS.length);

async function publish(): Promise<number> {
  const at: Published = await socket.send({ bid: 1.5 }, 'prices');
  await single.send('{"raw":"json"}');
  return at.seq;
}

async function checkPath(): Promise<Transport[]> {
  const report: Diagnosis = await diagnose('https://gw.example', { idle: 5, hold: 5 });
  for (const t of report.transports) console.log(t.transport, t.verdict, t.detail, t.facts);
  return report.recommended;
}

void publish();
void checkPath();
socket.close(1000, 'done');

// The types are precise:
// @ts-expect-error a message event has no `missed`
socket.onmessage = (e) => e.missed;
// @ts-expect-error no such transport
new FeedgateSocket('/', 't', { transports: ['carrier-pigeon'] });
// @ts-expect-error encoding is 'json' or 'lean'
new FeedgateSocket('/', 't', { encoding: 'xml' });
// @ts-expect-error a gap listener gets a GapEvent, whose topic is a string
socket.addEventListener('gap', (e) => e.topic.toFixed());
// @ts-expect-error topics are strings
socket.subscribe(42);
