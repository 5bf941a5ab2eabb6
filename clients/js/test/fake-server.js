// A feedgate server in memory, behind fake WebSocket, EventSource and
// fetch globals: enough of docs/protocol.md (one-topic and multiplexed
// endpoints, json and lean, subscribe/unsubscribe) to drive a
// FeedgateSocket through its real connections without a browser or a
// network. Faults refuse a transport and cut its open connections.

const EPOCH = '5eed5eed5eed5eed';

/** Runs `fn` on a later turn, as a network would. */
const later = (fn) => setTimeout(fn, 0);

export class FakeServer {
  /** topic → [{seq, data}] (seq = index + 1; nothing expires). */
  logs = new Map();
  /** transport → 'refuse' */
  faults = {};
  /** Open stream connections: {transport, topics: Set, send(topic, ev), cut()}. */
  streams = new Set();
  /** Long polls waiting for news: resolve functions. */
  waiting = new Set();
  /** Requests seen, per transport. */
  opened = { ws: 0, sse: 0, longpoll: 0, poll: 0 };

  /** Appends `data` to `topic`; returns its seq. */
  publish(topic, data) {
    const log = this.log(topic);
    const ev = { seq: log.length + 1, data };
    log.push(ev);
    for (const s of this.streams) if (s.topics.has(topic)) s.send(topic, ev);
    for (const w of [...this.waiting]) w();
    return ev.seq;
  }

  log(topic) {
    if (!this.logs.has(topic)) this.logs.set(topic, []);
    return this.logs.get(topic);
  }

  /** Refuses `transport` from now on, and cuts its open connections. */
  refuse(transport) {
    this.faults[transport] = 'refuse';
    for (const s of [...this.streams]) if (s.transport === transport) s.cut();
    if (transport === 'longpoll') for (const w of [...this.waiting]) w();
  }

  heal() {
    this.faults = {};
  }

  /** The v1 event JSON. */
  static json(topic, ev) {
    return JSON.stringify({ topic, seq: ev.seq, time: 0, data: ev.data });
  }

  /** Where a subscription starts: after `after`, or at the head. */
  start(topic, after) {
    return after === null || after === undefined ? this.log(topic).length : Number(String(after).split(':').pop());
  }

  /** The topics asked for: one topic from the path, or `topics=LIST`. */
  static asked(url) {
    const m = /^\/topics\/([^/]+)\/(\w+)$/.exec(url.pathname);
    if (m) return { transport: m[2], multi: false, items: [[decodeURIComponent(m[1]), url.searchParams.get('after')]] };
    const list = url.searchParams.get('topics') ?? '';
    const items = list
      .split(',')
      .filter(Boolean)
      .map((item) => {
        const at = item.indexOf('@');
        return at < 0 ? [item, null] : [item.slice(0, at), item.slice(at + 1)];
      });
    return { transport: url.pathname.slice(1), multi: true, items };
  }

  /** Puts fake WebSocket, EventSource and fetch in globalThis; returns
   *  the function that takes them away. */
  install() {
    const saved = { WebSocket: globalThis.WebSocket, EventSource: globalThis.EventSource, fetch: globalThis.fetch };
    globalThis.WebSocket = fakeWebSocket(this);
    globalThis.EventSource = fakeEventSource(this);
    globalThis.fetch = (url, init) => this.fetch(new URL(url), init);
    return () => Object.assign(globalThis, saved);
  }

  async fetch(url, init = {}) {
    const { transport, multi, items } = FakeServer.asked(url);
    this.opened[transport] = (this.opened[transport] ?? 0) + 1;
    const signal = init.signal;
    await new Promise((r) => later(r));
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    if (this.faults[transport] === 'refuse') return new Response('{"error":{"code":"refused"}}', { status: 503 });
    const lean = url.searchParams.get('encoding') === 'lean';
    const positions = items.map(([t, after]) => [t, this.start(t, after)]);
    const news = () => positions.some(([t, n]) => this.log(t).length > n);
    const hold = transport === 'longpoll' ? Number(url.searchParams.get('timeout') ?? 30) : 0;
    if (hold > 0 && !news()) {
      await new Promise((resolve, reject) => {
        const done = () => {
          this.waiting.delete(done);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, hold * 1000);
        this.waiting.add(done);
        signal?.addEventListener('abort', () => {
          this.waiting.delete(done);
          clearTimeout(timer);
          reject(new DOMException('aborted', 'AbortError'));
        });
      });
      if (this.faults[transport] === 'refuse') return new Response('{}', { status: 503 });
    }
    const body = multi ? this.manyBody(positions, lean) : this.oneBody(...positions[0], lean);
    return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
  }

  oneBody(topic, after, lean) {
    const events = this.log(topic).slice(after);
    const next = after + events.length;
    const list = lean ? events.map((e) => JSON.stringify(e.data)) : events.map((e) => FakeServer.json(topic, e));
    return `{"epoch":"${EPOCH}","events":[${list.join(',')}],"next":${next}}`;
  }

  manyBody(positions, lean) {
    const topics = {};
    const all = [];
    for (const [t, after] of positions) {
      const events = this.log(t).slice(after);
      topics[t] = { epoch: EPOCH, next: after + events.length };
      if (lean) topics[t].events = events.map((e) => e.data);
      else all.push(...events.map((e) => FakeServer.json(t, e)));
    }
    const list = positions.map(([t]) => `${t}@${EPOCH}:${topics[t].next}`).join(',');
    if (lean) return JSON.stringify({ topics, next: list });
    return `{"events":[${all.join(',')}],"topics":${JSON.stringify(topics)},"next":"${list}"}`;
  }
}

/** A WebSocket class served by `server`. */
function fakeWebSocket(server) {
  return class FakeWebSocket extends EventTarget {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    readyState = 0;
    onopen = null;
    onmessage = null;
    onclose = null;

    constructor(href) {
      super();
      const url = new URL(href);
      const { multi, items } = FakeServer.asked(url);
      const lean = url.searchParams.get('encoding') === 'lean';
      server.opened.ws += 1;
      const frame = (text) => later(() => this.readyState === 1 && this.onmessage?.({ data: text }));
      const control = (msg) => frame((lean ? '#' : '') + JSON.stringify(msg));
      const stream = {
        transport: 'ws',
        topics: new Set(),
        send: (topic, ev) => {
          if (!lean) frame(FakeServer.json(topic, ev));
          else frame(multi ? `${topic} ${JSON.stringify(ev.data)}` : JSON.stringify(ev.data));
        },
        cut: () => this.#closed(1006),
      };
      this.stream = stream;
      this.subscribe = (topic, after) => {
        const next = server.start(topic, after);
        if (multi) control({ type: 'subscribed', topic, epoch: EPOCH, next });
        else control({ type: 'ready', epoch: EPOCH, next });
        for (const ev of server.log(topic).slice(next)) stream.send(topic, ev);
        stream.topics.add(topic);
      };
      later(() => {
        if (server.faults.ws === 'refuse') return this.#closed(1006);
        this.readyState = 1;
        server.streams.add(stream);
        this.onopen?.({});
        for (const [t, after] of items) this.subscribe(t, after);
      });
    }

    send(text) {
      const msg = JSON.parse(text);
      if (msg.type === 'subscribe') this.subscribe(msg.topic, msg.after);
      else if (msg.type === 'unsubscribe') {
        this.stream.topics.delete(msg.topic);
        later(() => this.onmessage?.({ data: JSON.stringify({ type: 'unsubscribed', topic: msg.topic }) }));
      }
    }

    close(code = 1000) {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      server.streams.delete(this.stream);
      later(() => this.onclose?.({ code, reason: '' }));
    }

    #closed(code) {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      server.streams.delete(this.stream);
      this.onclose?.({ code, reason: '' });
    }
  };
}

/** An EventSource class served by `server`. */
function fakeEventSource(server) {
  return class FakeEventSource extends EventTarget {
    onopen = null;
    onerror = null;
    readyState = 0;

    constructor(href) {
      super();
      const url = new URL(href);
      const { multi, items } = FakeServer.asked(url);
      const lean = url.searchParams.get('encoding') === 'lean';
      server.opened.sse += 1;
      const emit = (type, data, lastEventId = '') =>
        later(() => this.readyState === 1 && this.dispatchEvent(new MessageEvent(type, { data, lastEventId })));
      const stream = {
        transport: 'sse',
        topics: new Set(),
        send: (topic, ev) => {
          if (!lean) emit('message', FakeServer.json(topic, ev), `${EPOCH}:${ev.seq}`);
          else if (multi) emit('message', `${topic} ${JSON.stringify(ev.data)}`, 'LIST');
          else emit('message', JSON.stringify(ev.data), String(ev.seq));
        },
        cut: () => {
          if (this.readyState !== 1) return;
          server.streams.delete(stream);
          this.onerror?.({});
        },
      };
      this.stream = stream;
      later(() => {
        if (server.faults.sse === 'refuse') return this.onerror?.({});
        this.readyState = 1;
        server.streams.add(stream);
        this.onopen?.({});
        for (const [t, after] of items) {
          const next = server.start(t, after);
          emit(multi ? 'subscribed' : 'ready', JSON.stringify(multi ? { topic: t, epoch: EPOCH, next } : { epoch: EPOCH, next }));
          for (const ev of server.log(t).slice(next)) stream.send(t, ev);
          stream.topics.add(t);
        }
      });
    }

    close() {
      this.readyState = 2;
      server.streams.delete(this.stream);
    }
  };
}
