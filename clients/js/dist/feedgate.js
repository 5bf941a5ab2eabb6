// feedgate.js 0.1.0: built from clients/js/src by clients/js/scripts/build.mjs (do not edit; see clients/js/README.md)

// src/backoff.js
function backoff(round, min, max, retryAfter, random = Math.random) {
  const d = Math.min(max, min * 2 ** Math.max(0, round - 1));
  return Math.max(random() * d, Math.min(retryAfter, max));
}
function restartDelay(serverDelay, spread, random = Math.random) {
  return serverDelay ?? random() * spread;
}

// src/endpoints.js
function topicUrl(base, topic, action, c, params) {
  const u = new URL(`${base}/topics/${encodeURIComponent(topic)}/${action}`);
  if (c.seq !== null) u.searchParams.set("after", String(c.seq));
  if (c.epoch) u.searchParams.set("epoch", c.epoch);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}
function listUrl(base, action, list, params) {
  const u = new URL(`${base}/${action}`);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const q = u.search.slice(1);
  u.search = list ? `topics=${list}${q ? `&${q}` : ""}` : q;
  return u.href;
}
function wsUrl(href) {
  const u = new URL(href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}
function authHeaders(token) {
  return token ? { authorization: `Bearer ${token}` } : {};
}

// src/lean.js
var CONTROL_MARK = "#";
var LeanSeqs = class {
  #seq = (
    /** @type {Map<string, number>} */
    /* @__PURE__ */ new Map()
  );
  /**
   * A control message for `topic` (`ready`, `subscribed`, `gap`, `reset`)
   * said where events resume: after `next`.
   * @param {string} topic
   * @param {unknown} next
   */
  at(topic, next) {
    if (typeof next === "number") this.#seq.set(topic, next);
  }
  /**
   * The seq of `topic`'s next lean event on this connection.
   * @param {string} topic
   */
  next(topic) {
    const seq = (this.#seq.get(topic) ?? 0) + 1;
    this.#seq.set(topic, seq);
    return seq;
  }
};
function splitTopic(text) {
  const sp = text.indexOf(" ");
  return sp > 0 ? [text.slice(0, sp), text.slice(sp + 1)] : null;
}
function leanBatch(next, events) {
  const first = next - events.length + 1;
  return events.map((data, i) => ({ text: JSON.stringify(data), seq: first + i }));
}

// src/conn/connection.js
var Connection = class {
  /** Ends a pending re-proof after a topic change. */
  #reproof = (
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    void 0
  );
  /**
   * @param {Host} host
   * @param {Transport} name
   */
  constructor(host, name) {
    this.host = host;
    this.name = name;
    this.closed = false;
    this.started = false;
    this.proved = false;
    this.since = void 0;
    this.reason = void 0;
    this.code = void 0;
    this.token = void 0;
    this.multi = false;
    this.topic = null;
    this.lean = false;
    this.leanSeqs = new LeanSeqs();
    this.onProved = () => {
    };
    this.onLost = () => {
    };
  }
  /**
   * Names the reason of the failure that follows (and a close code or
   * status); the first one named stands.
   * @param {string} reason
   * @param {number} [code]
   */
  as(reason, code) {
    if (this.reason === void 0) {
      this.reason = reason;
      if (code !== void 0) this.code = code;
    }
    return this;
  }
  /** The server placed us (`ready`, a poll answer): the proof, unless a
   *  check is still under way (SSE). */
  prove() {
    this.onProved();
  }
  /** Starts on the socket's endpoints and cursors as they are now. */
  begin() {
    this.started = true;
    this.#follow();
    this.lean = this.host.options.encoding === "lean";
    this.leanSeqs = new LeanSeqs();
    this.start();
  }
  /** Takes the socket's endpoints: one topic or the multiplexed ones. */
  #follow() {
    this.multi = this.host.multi();
    this.topic = this.host.topic();
  }
  /** The socket's topics changed. */
  retarget() {
    if (!this.started || this.closed) return;
    if (this.multi !== this.host.multi()) this.restart();
    else if (this.multi) this.update();
  }
  /**
   * Opens anew from the socket's cursors (a new LIST on SSE, a one-topic
   * connection that becomes multiplexed). A connection that had proved
   * itself must do so again within `probeTimeout`.
   */
  restart() {
    this.teardown();
    this.#follow();
    if (this.proved) {
      clearTimeout(this.#reproof);
      const limit = this.host.options.probeTimeout;
      this.#reproof = setTimeout(() => this.as("stalled").fail(`no answer within ${limit} ms after a topic change`), limit);
    }
    this.start();
  }
  /** The server answered: a pending re-proof is done. */
  heard() {
    clearTimeout(this.#reproof);
  }
  /**
   * Ends the connection and reports it lost (at most once).
   * @type {Lost}
   */
  fail(why, status, retryAfter, restart) {
    if (this.closed) return;
    this.as("error");
    this.teardown();
    this.closed = true;
    clearTimeout(this.#reproof);
    this.onLost(why, status, retryAfter, restart);
  }
  /** Ends the connection without reporting. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#reproof);
    this.teardown();
  }
  /**
   * The URL to open now, from the socket's cursors.
   * @param {Transport} action
   * @param {Record<string, string>} [params]
   */
  url(action, params = {}) {
    const p = { ...params };
    if (this.token && (action === "ws" || action === "sse")) p.token = this.token;
    if (this.lean) p.encoding = "lean";
    const { url, ledger } = this.host;
    if (this.multi) return listUrl(url, action, ledger.list(), p);
    const topic = (
      /** @type {string} */
      this.topic
    );
    return topicUrl(url, topic, action, ledger.get(topic) ?? { epoch: null, seq: null }, p);
  }
  /** Opens the transport (each kind its own). */
  start() {
  }
  /** The topics changed while multiplexed: follow them. */
  update() {
    this.restart();
  }
  /** Closes what `start` opened, quietly. */
  teardown() {
  }
};

// src/conn/poll-body.js
function placedAt(events, next) {
  return events.length > 0 ? events[0].seq - 1 : next;
}
function eventTexts(body, count) {
  const start = body.indexOf('"events":[');
  if (start < 0) return null;
  const out = [];
  let i = start + '"events":['.length;
  while (out.length < count) {
    if (body[i] === ",") i += 1;
    if (body[i] !== "{") return null;
    const from = i;
    let depth = 0;
    let inString = false;
    for (; i < body.length; i += 1) {
      const c = body[i];
      if (inString) {
        if (c === "\\") i += 1;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth += 1;
      else if ((c === "}" || c === "]") && --depth === 0) break;
    }
    if (i >= body.length) return null;
    i += 1;
    out.push(body.slice(from, i));
  }
  return out;
}

// src/conn/poll.js
var PollError = class extends Error {
  /** @type {number | undefined} */
  status = void 0;
  /** Seconds of Retry-After. */
  retryAfter = 0;
  timedOut = false;
};
var PollConn = class extends Connection {
  #first = true;
  /** A topic change aborted the request in flight. */
  #retargeted = false;
  /** A new token was asked for after a 401/403. */
  #renewed = false;
  /** A long poll the server answered because it drains: its delay (ms).
   *  @type {number | undefined} */
  #drainDelay = void 0;
  /** @type {AbortController | undefined} */
  #abort = void 0;
  /** @type {(() => void) | undefined} */
  #wake = void 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer = void 0;
  start() {
    this.#first = true;
    this.#loop();
  }
  async #loop() {
    const h = this.host;
    const o = h.options;
    const long = this.name === "longpoll";
    while (!this.closed) {
      if (this.multi && h.ledger.size === 0) {
        h.idle(this);
        await this.#sleep(Infinity);
        continue;
      }
      const params = {};
      if (long) params.timeout = this.#first ? "0" : String(o.longpollTimeout);
      const limit = this.#first ? o.probeTimeout : long ? o.longpollTimeout * 1e3 + o.requestTimeout : o.requestTimeout;
      const url = this.url(this.name, params);
      const { multi, topic } = this;
      this.#retargeted = false;
      const asked = performance.now();
      let body;
      try {
        body = await this.#fetch(url, limit);
      } catch (err) {
        const e = (
          /** @type {PollError} */
          err
        );
        if (this.#retargeted && !this.closed) continue;
        if ((e.status === 401 || e.status === 403) && !this.#renewed && typeof o.token === "function") {
          this.#renewed = true;
          try {
            this.token = await h.token();
            continue;
          } catch {
          }
        }
        const held = long && !this.#first && performance.now() - asked > 1e3;
        if (e.timedOut) this.as(this.#first ? "stalled" : "timeout");
        else this.as(held ? "cut" : "refused", e.status);
        this.fail(e.message, e.status, e.retryAfter);
        return;
      }
      if (this.closed) return;
      this.#renewed = false;
      this.#first = false;
      try {
        if (multi) this.#takeMany(body);
        else this.#take(
          body,
          /** @type {string} */
          topic
        );
      } catch {
        this.as("error").fail("unparsable answer");
        return;
      }
      if (this.closed) return;
      if (this.#drainDelay !== void 0) {
        this.as("restart").fail("server restarting", void 0, void 0, this.#drainDelay);
        return;
      }
      if (!long) await this.#sleep(o.pollInterval);
    }
  }
  /**
   * @param {string} url
   * @param {number} limit ms
   */
  async #fetch(url, limit) {
    const abort = this.#abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), limit);
    try {
      const res = await fetch(url, { headers: authHeaders(this.token), signal: abort.signal });
      const text = await res.text();
      const hint = res.headers.get("retry-after-ms");
      this.#drainDelay = res.ok && hint !== null ? Number(hint) || 0 : void 0;
      if (!res.ok) {
        const err = new PollError(`${this.name} answered ${res.status}`);
        err.status = res.status;
        err.retryAfter = Number(res.headers.get("retry-after")) || 0;
        throw err;
      }
      return text;
    } catch (e) {
      if (
        /** @type {Error} */
        e.name === "AbortError"
      ) {
        const err = new PollError(`${this.name} got no answer within ${limit} ms`);
        err.timedOut = true;
        throw err;
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
  /**
   * `{epoch, events, next}`: signals first, then events.
   * @param {string} text
   * @param {string} t
   */
  #take(text, t) {
    const body = JSON.parse(text);
    if (this.lean) return this.#takeLean(t, body, body.events);
    this.#place(t, body, placedAt(body.events, body.next));
    this.#events(text, body.events);
  }
  /**
   * `{events, topics: {T: {epoch, next, gap?, reset?}}, next}`: every
   * topic's position and signals, then the events.
   * @param {string} text
   */
  #takeMany(text) {
    const body = JSON.parse(text);
    const topics = Object.entries(body.topics);
    if (this.lean) {
      for (const [t, p] of topics) this.#takeLean(t, p, p.events ?? []);
      return;
    }
    for (const [t, p] of topics) {
      const mine = body.events.filter((e) => e.topic === t);
      this.#place(t, p, placedAt(mine, p.next));
    }
    this.#events(text, body.events);
  }
  /**
   * One topic's lean answer: the events are data whose seqs end at `next`.
   * @param {string} t
   * @param {Place} p
   * @param {unknown[]} events
   */
  #takeLean(t, p, events) {
    this.#place(t, p, p.next - events.length);
    for (const { text, seq } of leanBatch(p.next, events)) {
      if (!this.closed) this.host.event(this, text, { topic: t, seq });
    }
  }
  /**
   * A topic's position, then its reset and gap.
   * @param {string} t
   * @param {Place} p
   * @param {number} placed where a reader without a position stands
   */
  #place(t, p, placed) {
    const h = this.host;
    h.ready(this, t, p.epoch, placed);
    if (p.reset) h.reset(this, t, p.reset.reason, p.reset.epoch);
    if (p.gap) h.gap(this, t, p.gap.missed, p.gap.resume_seq);
  }
  /**
   * @param {string} text the body
   * @param {FeedgateEvent[]} events parsed
   */
  #events(text, events) {
    const raw = eventTexts(text, events.length);
    events.forEach((ev, i) => {
      if (!this.closed) this.host.event(this, raw ? raw[i] : JSON.stringify(ev), ev);
    });
  }
  /** Another endpoint (one topic → several): the loop's next request. */
  restart() {
    this.multi = this.host.multi();
    this.topic = this.host.topic();
    this.update();
  }
  /** The topics changed: ask again now, with the new LIST. */
  update() {
    this.#retargeted = true;
    this.#abort?.abort();
    this.#wake?.();
  }
  /** @param {number} ms */
  #sleep(ms) {
    return new Promise((resolve) => {
      this.#wake = () => resolve(void 0);
      if (ms !== Infinity) this.#timer = setTimeout(resolve, ms);
    });
  }
  teardown() {
    this.#abort?.abort();
    clearTimeout(this.#timer);
    this.#wake?.();
  }
};

// src/cursor.js
var NO_EPOCH = "0000000000000000";
var TOPIC_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
function parseCursor(after) {
  if (after === void 0 || after === null) return { epoch: null, seq: null };
  const m = /^(?:([0-9a-f]{16}):)?(\d+)$/.exec(String(after));
  if (!m) throw new SyntaxError(`FeedgateSocket: bad cursor ${after}`);
  return { epoch: m[1] || null, seq: Number(m[2]) };
}
function cursorText(c) {
  return c.epoch ? `${c.epoch}:${c.seq}` : String(c.seq);
}
function checkTopic(name) {
  const topic = String(name);
  if (!TOPIC_RE.test(topic)) throw new SyntaxError(`FeedgateSocket: bad topic name ${topic}`);
  return topic;
}
function splitItem(item) {
  const text = String(item);
  const at = text.indexOf("@");
  const topic = checkTopic(at < 0 ? text : text.slice(0, at));
  return [topic, at < 0 ? void 0 : text.slice(at + 1)];
}
function startOf(after, topic) {
  if (after !== null && typeof after === "object") return (
    /** @type {Record<string, unknown>} */
    after[topic]
  );
  return after;
}
function listText(positions) {
  const items = [];
  for (const [topic, c] of positions) items.push(c.seq === null ? topic : `${topic}@${cursorText(c)}`);
  return items.join(",");
}

// src/doctor/verdicts.json
var verdicts_default = { rules: { late_s: 0.5, slow_s: 1, bunched_share: 0.3, buffered_share: 0.5, keepalive_slack_s: 1, hold_slack_s: 0.5, slow_rtt_ms: 1e3 } };

// src/doctor/rules.js
var RULES = verdicts_default.rules;

// src/probe.js
function bunched(series) {
  let n = 0;
  for (let i = 1; i < series.length; i += 1) {
    const sent = (series[i].sent_us - series[i - 1].sent_us) / 1e3;
    if (sent > 0 && series[i].at - series[i - 1].at < RULES.bunched_share * sent) n += 1;
  }
  return n;
}
function probeStream(transport, base, params, budget) {
  return new Promise((resolve) => {
    const u = new URL(`${base}/probe/${transport}`);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, String(v));
    const run = { transport, started: performance.now(), opened: false, hello: null, events: [], end: null };
    let src = null;
    let timer;
    const finish = (how) => {
      if (run.ended) return;
      run.ended = how;
      run.endedAt = performance.now();
      clearTimeout(timer);
      if (src instanceof WebSocket) {
        const ws = src;
        if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1e3);
        else ws.close(1e3);
      } else src?.close();
      resolve(run);
    };
    const take = (text) => {
      let msg;
      try {
        msg = JSON.parse(String(text));
      } catch {
        return;
      }
      const a = { at: performance.now(), sent_us: msg.sent_us, msg };
      if (msg.type === "hello") run.hello = a;
      else if (msg.type === "probe") run.events.push(a);
      else if (msg.type === "end") {
        run.end = a;
        finish("end");
      }
    };
    timer = setTimeout(() => finish("deadline"), budget);
    try {
      if (transport === "ws") {
        const ws = src = new WebSocket(wsUrl(u.href));
        ws.onopen = () => run.opened = true;
        ws.onmessage = (m) => typeof m.data === "string" && take(m.data);
        ws.onclose = (e) => {
          run.code = e.code;
          finish(`close ${e.code}`);
        };
      } else {
        const es = src = new EventSource(u.href);
        es.onopen = () => run.opened = true;
        for (const type of ["hello", "probe", "end"]) es.addEventListener(type, (e) => take(
          /** @type {MessageEvent} */
          e.data
        ));
        es.onerror = () => finish(run.opened ? "error" : "refused");
      }
    } catch (e) {
      finish(`error: ${/** @type {Error} */
      e.message}`);
    }
  });
}
async function timedFetch(url, limit = 1e4) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), limit);
  const t0 = performance.now();
  try {
    const res = await fetch(url, { cache: "no-store", signal: abort.signal });
    const text = await res.text();
    const out = { ms: performance.now() - t0, status: res.status, text, t0 };
    if (!res.ok) out.error = `answered ${res.status}`;
    return out;
  } catch (e) {
    const err = (
      /** @type {Error} */
      e
    );
    return { ms: performance.now() - t0, error: err.name === "AbortError" ? `no answer within ${limit} ms` : err.message, t0 };
  } finally {
    clearTimeout(timer);
  }
}

// src/conn/sse.js
var CHECK_COUNT = 3;
var CHECK_INTERVAL_MS = 250;
function idSeq(id) {
  try {
    return parseCursor(id).seq;
  } catch {
    return null;
  }
}
var SseConn = class extends Connection {
  /** @type {EventSource | null} */
  #es = null;
  /** The buffer check: not run (undefined), 'running' or 'done'.
   *  @type {'running' | 'done' | undefined} */
  #check = void 0;
  /** The server placed us; proved as soon as the check passes. */
  #ready = false;
  start() {
    const h = this.host;
    if (this.multi && h.ledger.size === 0) {
      h.idle(this);
      return;
    }
    if (this.#check === void 0 && h.wantsBufferCheck()) this.#checkBuffering();
    const es = this.#es = new EventSource(this.url("sse"));
    let opened = false;
    es.onopen = () => opened = true;
    const json = (e, f) => {
      if (this.closed || this.#es !== es) return;
      try {
        f(JSON.parse(
          /** @type {MessageEvent} */
          e.data
        ));
      } catch {
        this.as("error").fail("unparsable event");
      }
    };
    const topic = (m) => this.multi ? m.topic : (
      /** @type {string} */
      this.topic
    );
    const at = (m) => this.leanSeqs.at(topic(m), m.next);
    es.addEventListener(this.multi ? "subscribed" : "ready", (e) => json(e, (m) => (at(m), h.ready(this, topic(m), m.epoch, m.next))));
    es.addEventListener("gap", (e) => json(e, (m) => (at(m), h.gap(this, topic(m), m.missed, m.resume_seq))));
    es.addEventListener("reset", (e) => json(e, (m) => (at(m), h.reset(this, topic(m), m.reason, m.epoch))));
    es.addEventListener("message", (e) => {
      if (this.closed || this.#es !== es) return;
      if (!this.lean) return json(e, (m) => h.event(this, e.data, m));
      const t = (
        /** @type {string} */
        this.topic
      );
      if (!this.multi) {
        const seq = idSeq(e.lastEventId);
        if (seq === null) this.as("error").fail(`bad event id ${e.lastEventId}`);
        else h.event(this, e.data, { topic: t, seq });
        return;
      }
      const split = splitTopic(e.data);
      if (!split) this.as("error").fail("unparsable event");
      else h.event(this, split[1], { topic: split[0], seq: this.leanSeqs.next(split[0]) });
    });
    let restart;
    es.addEventListener("restart", (e) => json(e, (m) => restart = Number(m.retry) || 0));
    es.onerror = () => {
      if (this.#es !== es) return;
      if (restart !== void 0) this.as("restart").fail("server restarting", void 0, void 0, restart);
      else if (!opened) this.as("refused").fail("event stream refused");
      else this.as("cut").fail("event stream failed or ended");
    };
  }
  /** Proved only once the buffer check (if any) has passed too. */
  prove() {
    this.#ready = true;
    if (this.#check !== "running") this.onProved();
  }
  /**
   * The buffer check: when every probe message arrived with the one
   * before it (a proxy held them and let go at the end of the probe's
   * response), the path buffers SSE: fail as `buffered` rather than wait
   * for probeTimeout. A probe that cannot run (an older server, the probe
   * rate limit) proves nothing either way.
   */
  #checkBuffering() {
    this.#check = "running";
    const h = this.host;
    const params = { count: CHECK_COUNT, interval_ms: CHECK_INTERVAL_MS };
    probeStream("sse", h.url, params, Math.max(0, h.options.probeTimeout - 200)).then((run) => {
      this.#check = "done";
      if (this.closed) return;
      const series = run.hello ? [run.hello, ...run.events] : [];
      if (series.length === CHECK_COUNT + 1 && bunched(series) === CHECK_COUNT) {
        const spread = Math.round(series[CHECK_COUNT].at - series[0].at);
        this.as("buffered").fail(`buffered: ${CHECK_COUNT + 1} probe messages sent ${CHECK_INTERVAL_MS} ms apart arrived within ${spread} ms`);
        return;
      }
      if (run.end) h.bufferChecked();
      if (this.#ready) this.onProved();
    });
  }
  /** A new LIST: a new stream from every topic's cursor. */
  update() {
    this.restart();
  }
  teardown() {
    this.#es?.close();
    this.#es = null;
  }
};

// src/conn/ws.js
var CONTROL_PREFIX = '{"type":';
var TOPIC_REFUSALS = /* @__PURE__ */ new Set(["invalid_topic", "invalid_cursor", "too_many_topics", "forbidden", "unauthorized"]);
var WsConn = class extends Connection {
  /** @type {WebSocket | null} */
  #ws = null;
  #opened = false;
  /**
   * A multiplexed socket's view of each topic on the server: 'pending'
   * (subscribe sent, or in the URL: until its `subscribed`), 'live' (its
   * events count), 'leaving' (unsubscribe sent: until `unsubscribed`,
   * after which no event of it follows). Only live topics' events and
   * signals reach the socket, so an event still in flight from an old
   * subscription never passes for a new one.
   * @type {Map<string, 'pending' | 'live' | 'leaving'>}
   */
  #subs = /* @__PURE__ */ new Map();
  start() {
    this.#subs = /* @__PURE__ */ new Map();
    if (this.multi) for (const t of this.host.ledger.topics()) this.#subs.set(t, "pending");
    this.#opened = false;
    const ws = this.#ws = new WebSocket(wsUrl(this.url("ws")));
    ws.onopen = () => {
      this.#opened = true;
      if (!this.multi) return;
      if (this.#subs.size === 0) this.host.idle(this);
      this.update();
    };
    ws.onmessage = (m) => {
      if (this.closed || typeof m.data !== "string") return;
      if (this.lean && !m.data.startsWith(CONTROL_MARK)) {
        this.#leanEvent(m.data);
        return;
      }
      const text = this.lean ? m.data.slice(1) : m.data;
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        this.as("error").fail("unparsable frame");
        return;
      }
      if (this.lean) this.leanSeqs.at(
        /** @type {string} */
        this.multi ? msg.topic : this.topic,
        msg.next
      );
      if (this.multi) this.#many(text, msg);
      else this.#one(text, msg);
    };
    ws.onclose = (e) => {
      if (e.code === 1012) this.as("restart", e.code);
      else if (!this.#opened) this.as("refused", e.code);
      else this.as(e.code === 1006 ? "cut" : "closed", e.code);
      this.fail(`websocket closed (${e.code}${e.reason ? ` ${e.reason}` : ""})`, void 0, void 0, e.code === 1012 ? null : void 0);
    };
  }
  /**
   * A lean event frame: the data, after `TOPIC ` when multiplexed.
   * @param {string} text
   */
  #leanEvent(text) {
    let topic = (
      /** @type {string} */
      this.topic
    );
    let data = text;
    if (this.multi) {
      const split = splitTopic(text);
      if (!split) {
        this.as("error").fail("unparsable frame");
        return;
      }
      [topic, data] = split;
      if (this.#subs.get(topic) !== "live") return;
    }
    this.host.event(this, data, { topic, seq: this.leanSeqs.next(topic) });
  }
  /**
   * `/topics/{topic}/ws`: events and `ready`/`gap`/`reset`.
   * @param {string} text
   * @param {Control} msg
   */
  #one(text, msg) {
    const h = this.host;
    const t = (
      /** @type {string} */
      this.topic
    );
    const m = (
      /** @type {Required<Control>} */
      msg
    );
    if (!text.startsWith(CONTROL_PREFIX)) h.event(this, text, m);
    else if (m.type === "ready") h.ready(this, t, m.epoch, m.next);
    else if (m.type === "gap") h.gap(this, t, m.missed, m.resume_seq);
    else if (m.type === "reset") h.reset(this, t, m.reason, m.epoch);
  }
  /**
   * `/ws?topics=LIST`: the same, naming their topic, plus the answers to
   * subscribe and unsubscribe.
   * @param {string} text
   * @param {Control} msg
   */
  #many(text, msg) {
    const h = this.host;
    const m = (
      /** @type {Required<Control>} */
      msg
    );
    const t = m.topic;
    const state = this.#subs.get(t);
    if (msg.type === void 0) {
      if (state === "live") h.event(this, text, m);
    } else if (m.type === "subscribed") {
      if (state === "pending") this.#subs.set(t, "live");
      if (state === "pending" || state === "live") h.ready(this, t, m.epoch, m.next);
    } else if (m.type === "gap") {
      if (state === "live") h.gap(this, t, m.missed, m.resume_seq);
    } else if (m.type === "reset") {
      if (state === "live") h.reset(this, t, m.reason, m.epoch);
    } else if (m.type === "unsubscribed") {
      if (state === "leaving") {
        this.#subs.delete(t);
        this.update();
      }
    } else if (m.type === "error" && t !== void 0) {
      if (state === "pending") {
        this.#subs.delete(t);
        if (TOPIC_REFUSALS.has(m.code)) h.topicError(this, t, m.code, m.message);
        else this.as("error").fail(`subscribe ${t} refused: ${m.code}`);
      } else if (state === "leaving" && m.code === "not_subscribed") {
        this.#subs.delete(t);
        this.update();
      }
    }
  }
  /** Sends the subscribe and unsubscribe messages that make the server
   *  follow what the socket follows. */
  update() {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const ledger = this.host.ledger;
    for (const [t, c] of ledger.entries()) {
      if (this.#subs.has(t)) continue;
      const msg = { type: "subscribe", topic: t };
      if (c.seq !== null) msg.after = cursorText(c);
      ws.send(JSON.stringify(msg));
      this.#subs.set(t, "pending");
    }
    for (const [t, state] of this.#subs) {
      if (state !== "leaving" && !ledger.has(t)) {
        ws.send(JSON.stringify({ type: "unsubscribe", topic: t }));
        this.#subs.set(t, "leaving");
      }
    }
  }
  teardown() {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.onmessage = ws.onclose = ws.onopen = null;
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1e3);
    else ws.close(1e3);
  }
};

// src/events.js
var FeedgateMessageEvent = class extends MessageEvent {
  /** @param {FeedgateMessageEventInit} init */
  constructor({ data, topic, seq, event, lastEventId, origin }) {
    super("message", { data, lastEventId, origin });
    this.topic = topic;
    this.seq = seq;
    this.event = event;
  }
};
var GapEvent = class extends Event {
  /**
   * @param {string} topic
   * @param {number} missed
   * @param {number} resumeSeq
   */
  constructor(topic, missed, resumeSeq) {
    super("gap");
    this.topic = topic;
    this.missed = missed;
    this.resumeSeq = resumeSeq;
  }
};
var ResetEvent = class extends Event {
  /**
   * @param {string} topic
   * @param {string} reason
   * @param {string} epoch
   */
  constructor(topic, reason, epoch) {
    super("reset");
    this.topic = topic;
    this.reason = reason;
    this.epoch = epoch;
  }
};
var TransportChangeEvent = class extends Event {
  /**
   * @param {Transport} transport
   * @param {Transport | null} previous
   * @param {'connect' | 'fallback' | 'upgrade'} reason
   * @param {[Transport, string, string][]} failures
   * @param {SwitchCause | null} cause
   */
  constructor(transport, previous, reason, failures, cause) {
    super("transportchange");
    this.transport = transport;
    this.previous = previous;
    this.reason = reason;
    this.failures = failures;
    this.cause = cause;
  }
};
var TopicErrorEvent = class extends Event {
  /**
   * @param {string} topic
   * @param {string} code
   * @param {string} message
   */
  constructor(topic, code, message) {
    super("topicerror");
    this.topic = topic;
    this.code = code;
    this.message = message;
  }
};
var FeedgateCloseEvent = class extends Event {
  /**
   * @param {number} code 1000 after `close()`, `4000 + status` after a
   *   400/401/403 answer
   * @param {string} reason
   * @param {boolean} wasClean
   */
  constructor(code, reason, wasClean) {
    super("close");
    this.code = code;
    this.reason = reason;
    this.wasClean = wasClean;
  }
};

// src/ledger.js
var Ledger = class {
  /** topic → position, in the order topics were added (the LIST's order). */
  #pos = (
    /** @type {Map<string, Position>} */
    /* @__PURE__ */ new Map()
  );
  /** How many topics are followed. */
  get size() {
    return this.#pos.size;
  }
  /** The topics followed, in order. */
  topics() {
    return [...this.#pos.keys()];
  }
  /** @param {string} topic */
  has(topic) {
    return this.#pos.has(topic);
  }
  /**
   * Where a topic stands (a copy), or undefined when not followed.
   * @param {string} topic
   * @returns {Position | undefined}
   */
  get(topic) {
    const c = this.#pos.get(topic);
    return c && { ...c };
  }
  /** Every topic and its position, in order. */
  entries() {
    return this.#pos.entries();
  }
  /**
   * Follows `topic` from `at`; false when it is followed already.
   * @param {string} topic
   * @param {Position} at
   */
  follow(topic, at) {
    if (this.#pos.has(topic)) return false;
    this.#pos.set(topic, { ...at });
    return true;
  }
  /**
   * Stops following `topic` and forgets its position; false when it was
   * not followed.
   * @param {string} topic
   */
  forget(topic) {
    return this.#pos.delete(topic);
  }
  /**
   * A topic's cursor (`EPOCH:SEQ`), or null when it has none yet.
   * @param {string} topic
   */
  cursorOf(topic) {
    const c = this.#pos.get(topic);
    return c && c.seq !== null ? cursorText(c) : null;
  }
  /** The LIST that resumes every topic (`a@EPOCH:SEQ,b,…`). */
  list() {
    return listText(this.#pos);
  }
  /**
   * The server placed a subscription (`ready`, `subscribed`, a poll
   * answer): at `epoch`, before the event after `next`. A fresh
   * subscription learns its position; with an epoch of our own a mismatch
   * comes as an explicit reset instead. A topic nobody had published to
   * has no epoch yet: its first publish brings one, announced by a new
   * `ready` / `subscribed` (docs/protocol.md).
   * @param {string} topic
   * @param {string} epoch
   * @param {number} next
   */
  place(topic, epoch, next) {
    const c = this.#pos.get(topic);
    if (c && (c.epoch === null || c.epoch === NO_EPOCH)) this.#pos.set(topic, { epoch, seq: c.seq ?? next });
  }
  /**
   * The server no longer has the events before `resumeSeq`. Several
   * connections may report the same gap: it is counted once, from what was
   * delivered. Returns how many events were missed, or null when the gap
   * is no news (or the topic not followed).
   * @param {string} topic
   * @param {number} missedByConn what the connection's server said
   * @param {number} resumeSeq
   */
  skip(topic, missedByConn, resumeSeq) {
    const c = this.#pos.get(topic);
    if (!c) return null;
    const last = c.seq;
    if (last !== null && resumeSeq - 1 <= last) return null;
    this.#pos.set(topic, { ...c, seq: resumeSeq - 1 });
    return last === null ? missedByConn : resumeSeq - 1 - last;
  }
  /**
   * The topic's log restarted (another epoch, or a cursor past its head):
   * after 0 in the new epoch. What follows is everything retained, and a
   * reconnect before it arrives asks for exactly that. False when the
   * topic is not followed.
   * @param {string} topic
   * @param {string} epoch
   */
  restart(topic, epoch) {
    if (!this.#pos.has(topic)) return false;
    this.#pos.set(topic, { epoch, seq: 0 });
    return true;
  }
  /**
   * One event of `topic` with `seq` arrived: whether it is the next one.
   * After 0 (or a reset) the server starts at the oldest event it still
   * has, whatever its seq; after N it continues at N + 1 or says why not.
   * @param {string} topic
   * @param {number} seq
   * @returns {Take}
   */
  take(topic, seq) {
    const c = this.#pos.get(topic);
    if (!c || c.seq === null) return "unfollowed";
    const last = c.seq;
    if (seq <= last) return "duplicate";
    if (last !== 0 && seq !== last + 1) return "jump";
    this.#pos.set(topic, { epoch: c.epoch, seq });
    return "deliver";
  }
};

// src/memory.js
var PREFIX = "feedgate.transport:";
function recall(url, transports) {
  try {
    const i = transports.indexOf(globalThis.sessionStorage?.getItem(PREFIX + url) ?? "");
    return i < 0 ? 0 : i;
  } catch {
    return 0;
  }
}
function remember(url, transport) {
  try {
    globalThis.sessionStorage?.setItem(PREFIX + url, transport);
  } catch {
  }
}

// src/options.js
var TRANSPORTS = (
  /** @type {readonly Transport[]} */
  Object.freeze(["ws", "sse", "longpoll", "poll"])
);
var DEFAULTS = Object.freeze({
  transports: TRANSPORTS,
  probeTimeout: 4e3,
  probeInterval: 2e4,
  pollInterval: 1e3,
  longpollTimeout: 25,
  requestTimeout: 1e4,
  // Doubled per failed round, with full jitter (backoff.js).
  reconnectDelay: 500,
  maxReconnectDelay: 15e3,
  restartSpread: 5e3,
  after: void 0,
  token: void 0,
  publishToken: void 0,
  remember: true,
  telemetry: true,
  bufferCheck: true,
  // permessage-deflate needs no option: browsers offer it on every
  // WebSocket and the server accepts it.
  encoding: "json"
});
function settings(options) {
  const o = { ...DEFAULTS, ...options };
  o.transports = (o.transports || TRANSPORTS).filter((t) => TRANSPORTS.includes(t));
  if (o.transports.length === 0) throw new SyntaxError("FeedgateSocket: no known transport");
  return o;
}

// src/telemetry.js
var REPORTS_PER_MINUTE = 4;
function switchCause(from, to, why, failures) {
  if (why === "upgrade") return from && from !== to ? { from, to, reason: "climb" } : null;
  if (failures.length === 0) return null;
  const left = from ?? failures[0].t;
  const mine = failures.filter((f2) => f2.t === left);
  const f = left === to ? mine[0] : mine.at(-1) ?? failures[0];
  if (!f || f.reason === "restart") return null;
  if (left === to && f.reason !== "cut" && f.reason !== "closed") return null;
  const cause = (
    /** @type {SwitchCause} */
    { from: left, to, reason: f.reason }
  );
  if (f.code !== void 0) cause.code = f.code;
  if (f.after_s !== void 0) cause.after_s = f.after_s;
  return cause;
}
var Reporter = class {
  #url;
  /** When the reports of the last minute were sent (performance.now()). */
  #sent = (
    /** @type {number[]} */
    []
  );
  /** @param {string} base the server's base URL */
  constructor(base) {
    this.#url = `${base}/telemetry/switch`;
  }
  /**
   * Sends `cause`, unless null or over the cap. A beacon (text/plain: no
   * CORS preflight) goes out on a keep-alive connection to the server when
   * one is idle. Returns whether it was sent.
   * @param {SwitchCause | null} cause
   * @param {number} [now] performance.now()
   */
  report(cause, now = performance.now()) {
    if (!cause) return false;
    this.#sent = this.#sent.filter((t) => now - t < 6e4);
    if (this.#sent.length >= REPORTS_PER_MINUTE) return false;
    this.#sent.push(now);
    const body = JSON.stringify(cause);
    try {
      if (globalThis.navigator?.sendBeacon?.(this.#url, body)) return true;
    } catch {
    }
    fetch(this.#url, { method: "POST", body, keepalive: true, mode: "no-cors", credentials: "omit" }).catch(() => {
    });
    return true;
  }
};

// src/socket.js
var FATAL_STATUSES = /* @__PURE__ */ new Set([400, 401, 403]);
var STABLE_MS = 1e4;
var CONNECTIONS = { ws: WsConn, sse: SseConn, longpoll: PollConn, poll: PollConn };
var EVENT_TYPES = (
  /** @type {const} */
  ["open", "message", "close", "error", "gap", "reset", "transportchange", "topicerror"]
);
var FeedgateSocket = class _FeedgateSocket extends EventTarget {
  static CONNECTING = (
    /** @type {const} */
    0
  );
  static OPEN = (
    /** @type {const} */
    1
  );
  static CLOSING = (
    /** @type {const} */
    2
  );
  static CLOSED = (
    /** @type {const} */
    3
  );
  /** @type {Handler<Event>} */
  onopen = null;
  /** @type {Handler<FeedgateMessageEvent>} */
  onmessage = null;
  /** @type {Handler<FeedgateCloseEvent>} */
  onclose = null;
  /** @type {Handler<Event>} */
  onerror = null;
  /** @type {Handler<GapEvent>} */
  ongap = null;
  /** @type {Handler<ResetEvent>} */
  onreset = null;
  /** @type {Handler<TransportChangeEvent>} */
  ontransportchange = null;
  /** @type {Handler<TopicErrorEvent>} */
  ontopicerror = null;
  /** @type {0 | 1 | 2 | 3} */
  readyState = _FeedgateSocket.CONNECTING;
  /** As on WebSocket: always empty. */
  protocol = "";
  /** As on WebSocket: always empty. */
  extensions = "";
  /** As on WebSocket: always 0 (send() does not queue). */
  bufferedAmount = 0;
  /** As on WebSocket; events are text. */
  binaryType = "blob";
  /** The transport in use, or null before the first proved itself.
   *  @type {Transport | null} */
  transport = null;
  /** The one topic (v1 endpoints), or null when following several.
   *  @type {string | null} */
  topic = null;
  /** The server's base URL, without a trailing `/`. */
  url;
  /** @type {Settings} */
  #o;
  #ledger = new Ledger();
  /** On the multiplexed endpoints (`?topics=LIST`). */
  #multi = false;
  #origin;
  /** Every connection not yet closed. @type {Set<Connection>} */
  #conns = /* @__PURE__ */ new Set();
  /** The connection that proved itself and delivers. @type {Connection | null} */
  #active = null;
  /** A connection being tried (fallback or climb). @type {Connection | null} */
  #probe = null;
  /** Failed rounds in a row, for the backoff. */
  #round = 0;
  /** ms, the longest Retry-After since the last wait. */
  #retryAfter = 0;
  /** @type {Set<ReturnType<typeof setTimeout>>} */
  #timers = /* @__PURE__ */ new Set();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #climbTimer = void 0;
  /** What failed since the last transport proved; the cause of the next
   *  switch is among them. @type {Failure[]} */
  #failures = [];
  #reporter;
  /** The SSE buffer check passed once: not again. */
  #sseChecked = false;
  /** A topic change is queued for the connections. */
  #retargeting = false;
  /** @type {Host} */
  #host;
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
  constructor(url, topics, options = {}) {
    super();
    const base = new URL(url, globalThis.location?.href);
    if (!/^https?:$/.test(base.protocol)) {
      throw new SyntaxError(`FeedgateSocket: url must be http(s), got ${base.protocol}`);
    }
    this.url = base.href.replace(/\/+$/, "");
    this.#origin = base.origin;
    const o = this.#o = settings(options);
    if (Array.isArray(topics)) {
      this.#multi = true;
      for (const item of topics) {
        const [topic, at] = splitItem(item);
        if (!this.#ledger.follow(topic, parseCursor(at !== void 0 ? at : startOf(o.after, topic)))) {
          throw new SyntaxError(`FeedgateSocket: topic ${topic} is listed twice`);
        }
      }
    } else {
      this.topic = String(topics);
      this.#ledger.follow(this.topic, parseCursor(o.after));
    }
    this.#reporter = new Reporter(this.url);
    this.#host = {
      options: o,
      url: this.url,
      ledger: this.#ledger,
      multi: () => this.#multi,
      topic: () => this.topic,
      token: () => this.#token(o.token),
      wantsBufferCheck: () => this.#wantsBufferCheck(),
      bufferChecked: () => this.#sseChecked = true,
      ready: (c, t, epoch, next) => this.#onReady(c, t, epoch, next),
      idle: (c) => this.#onIdle(c),
      gap: (c, t, missed, resumeSeq) => this.#onGap(c, t, missed, resumeSeq),
      reset: (c, t, reason, epoch) => this.#onReset(c, t, reason, epoch),
      topicError: (c, t, code, message) => this.#onTopicError(c, t, code, message),
      event: (c, text, event) => this.#onEvent(c, text, event)
    };
    for (const type of EVENT_TYPES) {
      super.addEventListener(type, (e) => (
        /** @type {Handler<Event>} */
        this[`on${type}`]?.call(this, e)
      ));
    }
    this.#later(() => this.#connectFrom(o.remember ? recall(this.url, o.transports) : 0, "connect"), 0);
  }
  get CONNECTING() {
    return _FeedgateSocket.CONNECTING;
  }
  get OPEN() {
    return _FeedgateSocket.OPEN;
  }
  get CLOSING() {
    return _FeedgateSocket.CLOSING;
  }
  get CLOSED() {
    return _FeedgateSocket.CLOSED;
  }
  /** The topics followed, in the order they were added. */
  get topics() {
    return this.#ledger.topics();
  }
  /**
   * Where it stands. One topic: the cursor of the last delivered event,
   * `EPOCH:SEQ`, or null. Several: the LIST it would reconnect with
   * (`a@EPOCH:SEQ,b,…`).
   * @returns {string | null}
   */
  get cursor() {
    return this.#multi ? this.#ledger.list() : this.cursorOf(
      /** @type {string} */
      this.topic
    );
  }
  /** The seq of the last delivered event (one topic; null with several). */
  get lastSeq() {
    return this.#multi ? null : this.#ledger.get(
      /** @type {string} */
      this.topic
    )?.seq ?? null;
  }
  /**
   * A topic's cursor (`EPOCH:SEQ`), or null when it has none yet.
   * @param {string} topic
   */
  cursorOf(topic) {
    return this.#ledger.cursorOf(topic);
  }
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
  subscribe(topic, cursor) {
    topic = checkTopic(topic);
    const at = parseCursor(cursor);
    if (this.readyState >= _FeedgateSocket.CLOSING) {
      throw new DOMException("FeedgateSocket is closed", "InvalidStateError");
    }
    if (!this.#ledger.follow(topic, at)) return false;
    this.#goMulti();
    this.#retarget();
    return true;
  }
  /**
   * Stops following a topic: none of its events is delivered after this
   * call. Its cursor is forgotten (subscribing again starts where that
   * subscribe says). Returns false when it was not followed.
   * @param {string} topic
   */
  unsubscribe(topic) {
    if (this.readyState >= _FeedgateSocket.CLOSING || !this.#ledger.forget(String(topic))) return false;
    this.#goMulti();
    this.#retarget();
    return true;
  }
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
  send(data, topic = this.topic) {
    const fail = (e) => quiet(Promise.reject(e));
    if (this.readyState >= _FeedgateSocket.CLOSING) {
      return fail(new DOMException("FeedgateSocket is closed", "InvalidStateError"));
    }
    if (topic === null || topic === void 0) {
      return fail(new TypeError("FeedgateSocket: send(data, topic) needs a topic when following several"));
    }
    const body = typeof data === "string" ? data : JSON.stringify(data);
    const o = this.#o;
    return quiet(
      Promise.resolve().then(() => this.#token(o.publishToken ?? o.token)).then(
        (token) => fetch(`${this.url}/topics/${encodeURIComponent(topic)}/events`, {
          method: "POST",
          headers: { ...authHeaders(token), "content-type": "application/json" },
          body
        })
      ).then(async (res) => {
        const text = await res.text();
        if (!res.ok) throw new Error(`publish failed: ${res.status} ${text}`);
        return JSON.parse(text);
      })
    );
  }
  /**
   * Closes the subscription. `close` fires (asynchronously) once.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1e3, reason = "") {
    if (this.readyState >= _FeedgateSocket.CLOSING) return;
    this.#shutdown(code, reason, true);
  }
  /**
   * @template {keyof FeedgateSocketEventMap} K
   * @overload
   * @param {K} type
   * @param {(this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @param {string} type
   * @param {any} listener
   * @param {boolean | AddEventListenerOptions} [options]
   */
  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
  }
  /**
   * @template {keyof FeedgateSocketEventMap} K
   * @overload
   * @param {K} type
   * @param {(this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any} listener
   * @param {boolean | EventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} listener
   * @param {boolean | EventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @param {string} type
   * @param {any} listener
   * @param {boolean | EventListenerOptions} [options]
   */
  removeEventListener(type, listener, options) {
    super.removeEventListener(type, listener, options);
  }
  // ---- following other topics ----
  /** From now on, the multiplexed endpoints (a one-topic socket that
   *  subscribes to another topic). */
  #goMulti() {
    if (this.#multi) return;
    this.#multi = true;
    this.topic = null;
  }
  /**
   * Tells every open connection that the topics changed, once per turn of
   * the event loop, so that several subscribe() calls in a row cost one
   * new request on SSE and polls.
   */
  #retarget() {
    if (this.#retargeting) return;
    this.#retargeting = true;
    queueMicrotask(() => {
      this.#retargeting = false;
      if (this.readyState >= _FeedgateSocket.CLOSING) return;
      for (const c of this.#conns) c.retarget();
    });
  }
  // ---- connecting, falling back, climbing back ----
  /**
   * Tries transports from index `i` down the list until one proves itself.
   * @param {number} i
   * @param {'connect' | 'fallback'} why goes with the transportchange event
   */
  #connectFrom(i, why) {
    if (this.readyState >= _FeedgateSocket.CLOSING) return;
    const list = this.#o.transports;
    if (i >= list.length) {
      this.#round += 1;
      this.#later(() => this.#connectFrom(0, why), this.#backoff());
      return;
    }
    this.#open(list[i], (conn) => this.#activate(conn, why), () => this.#connectFrom(i + 1, why));
  }
  /** Every `probeInterval`, tries the transports better than the current one. */
  #scheduleClimb() {
    clearTimeout(this.#climbTimer);
    this.#climbTimer = void 0;
    this.#failures = [];
    const at = this.#o.transports.indexOf(
      /** @type {Transport} */
      this.transport
    );
    if (at <= 0 || !(this.#o.probeInterval > 0)) return;
    this.#climbTimer = setTimeout(() => this.#climb(0, at), this.#o.probeInterval);
  }
  /**
   * @param {number} i the transport to try
   * @param {number} at the one in use
   */
  #climb(i, at) {
    if (this.readyState >= _FeedgateSocket.CLOSING || !this.#active) return;
    if (this.#probe || i >= at) {
      this.#scheduleClimb();
      return;
    }
    this.#open(this.#o.transports[i], (conn) => this.#activate(conn, "upgrade"), () => this.#climb(i + 1, at));
  }
  /**
   * Opens one connection from the current cursors and watches its proof.
   * @param {Transport} name
   * @param {(conn: Connection) => void} onProved
   * @param {() => void} onFailed
   */
  #open(name, onProved, onFailed) {
    const conn = new CONNECTIONS[name](this.#host, name);
    this.#probe = conn;
    this.#conns.add(conn);
    let settled = false;
    let timer;
    conn.onProved = () => {
      conn.proved = true;
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this.#probe === conn) this.#probe = null;
      onProved(conn);
    };
    conn.onLost = (why, status, retryAfter, restart) => {
      clearTimeout(timer);
      if (retryAfter && retryAfter > 0) this.#retryAfter = Math.max(this.#retryAfter, retryAfter * 1e3);
      this.#conns.delete(conn);
      if (this.readyState >= _FeedgateSocket.CLOSING) return;
      if (status !== void 0 && FATAL_STATUSES.has(status)) {
        this.#fatal(4e3 + status, why);
        return;
      }
      if (!settled) {
        settled = true;
        if (this.#probe === conn) this.#probe = null;
        this.#failed(conn, why);
        onFailed();
      } else if (this.#active === conn) {
        this.#lost(conn, why, restart);
      }
    };
    const begin = (token2) => {
      if (conn.closed) return;
      conn.token = token2;
      const limit = this.#o.probeTimeout;
      timer = setTimeout(() => conn.as("stalled").fail(`no answer within ${limit} ms`), limit);
      conn.begin();
    };
    let token;
    try {
      token = this.#token(this.#o.token);
    } catch (e) {
      token = Promise.reject(e);
    }
    if (typeof /** @type {any} */
    token?.then === "function") {
      const limit = this.#o.requestTimeout;
      timer = setTimeout(() => conn.fail(`no token within ${limit} ms`), limit);
      token.then(
        (t) => {
          clearTimeout(timer);
          begin(t);
        },
        (e) => conn.fail(`no token: ${e?.message ?? e}`)
      );
    } else {
      begin(
        /** @type {string | null | undefined} */
        token
      );
    }
  }
  /**
   * A connection proved itself: it takes over.
   * @param {Connection} conn
   * @param {'connect' | 'fallback' | 'upgrade'} why
   */
  #activate(conn, why) {
    conn.since = performance.now();
    this.#retryAfter = 0;
    const previous = this.#active;
    this.#active = conn;
    if (previous && previous !== conn) {
      previous.close();
      this.#conns.delete(previous);
    }
    const from = this.transport;
    this.transport = conn.name;
    if (this.#o.remember) remember(this.url, conn.name);
    if (this.readyState === _FeedgateSocket.CONNECTING) {
      this.readyState = _FeedgateSocket.OPEN;
      this.dispatchEvent(new Event("open"));
    }
    const failures = this.#failures;
    this.#failures = [];
    const cause = switchCause(from, conn.name, why, failures);
    if (from !== conn.name) {
      const tried = failures.map((f) => (
        /** @type {[Transport, string, string]} */
        [f.t, f.why, f.reason]
      ));
      this.dispatchEvent(new TransportChangeEvent(conn.name, from, why, tried, cause));
    }
    if (this.#o.telemetry) this.#reporter.report(cause);
    this.#scheduleClimb();
  }
  /**
   * Records a failed or lost connection, with the reason it observed.
   * @param {Connection} conn
   * @param {string} why
   */
  #failed(conn, why) {
    const f = { t: conn.name, why, reason: conn.reason ?? "error" };
    if (conn.code !== void 0) f.code = conn.code;
    if (conn.since !== void 0) f.after_s = Math.round((performance.now() - conn.since) / 100) / 10;
    this.#failures.push(f);
  }
  /**
   * The active connection dropped: reconnect, on the same transport first.
   * @param {Connection} conn
   * @param {string} why
   * @param {number | null | undefined} restart set when the server drained
   *   for a restart: its delay (ms), or null for a random one
   */
  #lost(conn, why, restart) {
    this.#active = null;
    this.#failed(conn, why);
    if (performance.now() - /** @type {number} */
    conn.since > STABLE_MS) this.#round = 0;
    clearTimeout(this.#climbTimer);
    if (this.#probe) {
      this.#probe.close();
      this.#conns.delete(this.#probe);
      this.#probe = null;
    }
    const i = Math.max(0, this.#o.transports.indexOf(conn.name));
    if (restart !== void 0) {
      this.#round = 0;
      this.#later(() => this.#connectFrom(i, "fallback"), restartDelay(restart, this.#o.restartSpread));
      return;
    }
    this.#round += 1;
    this.#later(() => this.#connectFrom(i, "fallback"), this.#backoff());
  }
  /**
   * @param {number} code
   * @param {string} reason
   */
  #fatal(code, reason) {
    this.dispatchEvent(new Event("error"));
    this.#shutdown(code, reason, false);
  }
  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} wasClean
   */
  #shutdown(code, reason, wasClean) {
    this.readyState = _FeedgateSocket.CLOSING;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    clearTimeout(this.#climbTimer);
    for (const c of this.#conns) c.close();
    this.#conns.clear();
    this.#active = this.#probe = null;
    queueMicrotask(() => {
      this.readyState = _FeedgateSocket.CLOSED;
      this.dispatchEvent(new FeedgateCloseEvent(code, reason, wasClean));
    });
  }
  /** The wait before the next round, and the Retry-After it honoured is spent. */
  #backoff() {
    const o = this.#o;
    const wait = backoff(this.#round, o.reconnectDelay, o.maxReconnectDelay, this.#retryAfter);
    this.#retryAfter = 0;
    return wait;
  }
  /**
   * @param {() => void} fn
   * @param {number} ms
   */
  #later(fn, ms) {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }
  /** SSE is to be checked for buffering: not yet passed, and a transport
   *  to fall back to after it (a buffering stream beats none). */
  #wantsBufferCheck() {
    const list = this.#o.transports;
    return this.#o.bufferCheck && !this.#sseChecked && list.indexOf("sse") < list.length - 1;
  }
  /** @param {TokenSource} t */
  #token(t) {
    return typeof t === "function" ? t() : t;
  }
  // ---- what connections report; the one place events are let through ----
  /** @param {Connection} conn */
  #live(conn) {
    return this.readyState < _FeedgateSocket.CLOSING && (conn === this.#active || conn === this.#probe);
  }
  /**
   * `ready` / `subscribed` (streams) or a poll answer's position for
   * `topic`: where the server put us. Proves the connection.
   * @param {Connection} conn
   * @param {string} topic
   * @param {string} epoch
   * @param {number} next
   */
  #onReady(conn, topic, epoch, next) {
    if (!this.#live(conn)) return;
    conn.heard();
    this.#ledger.place(topic, epoch, next);
    conn.prove();
  }
  /** A connection that follows no topic (all unsubscribed) is as good as
   *  proved. @param {Connection} conn */
  #onIdle(conn) {
    if (!this.#live(conn)) return;
    conn.heard();
    conn.prove();
  }
  /**
   * @param {Connection} conn
   * @param {string} topic
   * @param {number} missedByConn
   * @param {number} resumeSeq
   */
  #onGap(conn, topic, missedByConn, resumeSeq) {
    if (!this.#live(conn)) return;
    const missed = this.#ledger.skip(topic, missedByConn, resumeSeq);
    if (missed !== null) this.dispatchEvent(new GapEvent(topic, missed, resumeSeq));
  }
  /**
   * @param {Connection} conn
   * @param {string} topic
   * @param {string} reason
   * @param {string} epoch
   */
  #onReset(conn, topic, reason, epoch) {
    if (!this.#live(conn) || !this.#ledger.has(topic)) return;
    for (const c of this.#conns) {
      if (c !== conn) {
        c.close();
        this.#conns.delete(c);
      }
    }
    if (this.#probe !== conn) {
      this.#probe = null;
      this.#scheduleClimb();
    }
    this.#ledger.restart(topic, epoch);
    this.dispatchEvent(new ResetEvent(topic, reason, epoch));
  }
  /**
   * The server refused to follow `topic` (WebSocket `error`): drop it.
   * @param {Connection} conn
   * @param {string} topic
   * @param {string} code
   * @param {string} message
   */
  #onTopicError(conn, topic, code, message) {
    if (!this.#live(conn) || !this.#ledger.forget(topic)) return;
    this.#retarget();
    this.dispatchEvent(new TopicErrorEvent(topic, code, message));
  }
  /**
   * One event, as raw JSON text plus its parsed form.
   * @param {Connection} conn
   * @param {string} text
   * @param {FeedgateEvent} event
   */
  #onEvent(conn, text, event) {
    if (!this.#live(conn)) return;
    const topic = (
      /** @type {string} */
      event.topic ?? conn.topic
    );
    const seq = event.seq;
    const take = this.#ledger.take(topic, seq);
    if (take === "jump") {
      conn.as("error").fail(`out-of-order event ${topic} ${seq} after ${this.#ledger.get(topic)?.seq}`);
      return;
    }
    if (take !== "deliver") return;
    this.#round = 0;
    const lastEventId = cursorText(
      /** @type {import('./cursor.js').Position} */
      this.#ledger.get(topic)
    );
    this.dispatchEvent(new FeedgateMessageEvent({ data: text, topic, seq, event, lastEventId, origin: this.#origin }));
  }
};
function quiet(p) {
  p.catch(() => {
  });
  return p;
}

// src/doctor/verdicts.js
var round1 = (x) => Number.isFinite(x) ? Math.round(x * 10) / 10 : null;
function judgeStream(run, clock, o, timeOrigin = performance.timeOrigin) {
  const t = run.transport;
  const toUnix = (at) => timeOrigin + at;
  let offset = 0;
  let unc = Infinity;
  if (clock) [offset, unc] = [clock.offset, clock.uncertainty / 1e3];
  else if (run.hello) [offset, unc] = [run.hello.sent_us / 1e3 - toUnix(run.hello.at), 0];
  const delays = run.events.map((a) => (toUnix(a.at) + offset - a.sent_us / 1e3) / 1e3);
  const maxDelay = delays.length ? Math.max(...delays) : NaN;
  const pairs = Math.max(0, run.events.length - 1);
  const b = bunched(run.events);
  const last = run.end ?? run.events.at(-1) ?? run.hello;
  const silence = ((run.endedAt ?? run.started) - (last ? last.at : run.started)) / 1e3;
  const keep = run.hello?.msg[t === "ws" ? "ws_ping_s" : "sse_heartbeat_s"];
  const late = maxDelay > RULES.late_s + unc;
  const r = {
    transport: t,
    verdict: "ok",
    detail: "",
    facts: {
      events_received: run.events.length,
      max_delay_ms: round1(maxDelay * 1e3),
      bunched_pairs: b,
      pairs,
      ended: run.ended,
      silence_before_end_s: round1(silence),
      keepalive_s: keep ?? null
    }
  };
  if (!run.hello && run.events.length === 0) {
    r.verdict = "blocked";
    r.detail = run.opened ? `opened but nothing arrived (${run.ended})` : t === "ws" ? `upgrade refused (close ${run.code ?? "?"})` : "refused (an error status, or no connection)";
  } else if (late && pairs > 0 && b >= RULES.buffered_share * pairs || late && run.events.length < 2) {
    r.verdict = "buffered";
    r.detail = `events held back: up to ${maxDelay.toFixed(1)} s late, ${b} of ${pairs} arrived together`;
  } else if (maxDelay > RULES.slow_s + unc) {
    r.verdict = "slow";
    r.detail = `events arrive, up to ${maxDelay.toFixed(1)} s late (not bunched)`;
  } else if (!run.end && run.events.length < o.count) {
    r.verdict = "cut";
    r.detail = `closed while delivering (${run.events.length} of ${o.count} events; ${run.ended})`;
  } else if (!run.end && run.ended !== "deadline" && silence <= (keep ?? Infinity) + RULES.keepalive_slack_s) {
    r.verdict = "cut";
    r.detail = `idle stream cut after ${silence.toFixed(1)} s of silence (${run.ended}); feedgate's ${t === "ws" ? "ping" : "heartbeat"} every ${keep ?? "?"} s would come too late`;
  } else {
    r.detail = `${run.events.length} events prompt (max delay ${Math.max(0, Math.round(maxDelay * 1e3))} ms); ${run.end ? `no idle cut within ${o.idle} s` : `idle connections cut after ${silence.toFixed(0)} s, after feedgate's keep-alive`}`;
  }
  return r;
}
function judgeLongPoll({ quick, held }, hold) {
  const r = { transport: "longpoll", verdict: "ok", detail: "", facts: { rtt_ms: round1(quick.ms), hold_s: hold } };
  if (quick.error || !held) {
    r.verdict = "blocked";
    r.detail = `refused: ${quick.error}`;
    return r;
  }
  const after = held.ms / 1e3;
  r.facts.answered_after_s = round1(after);
  if (held.error || after + RULES.hold_slack_s < hold) {
    r.verdict = "cut";
    r.detail = `a ${hold} s hold was cut after ${after.toFixed(1)} s (${held.error ?? "answered early"})`;
  } else if (quick.ms > RULES.slow_rtt_ms) {
    r.verdict = "slow";
    r.detail = `held ${hold} s, but a round trip takes ${Math.round(quick.ms)} ms`;
  } else {
    r.detail = `held ${hold} s and answered; round trip ${Math.round(quick.ms)} ms`;
  }
  return r;
}
function judgePoll(poll, timing) {
  const r = { transport: "poll", verdict: "ok", detail: "", facts: { rtt_ms: round1(poll.ms), status: poll.status ?? null } };
  if (poll.error) {
    r.verdict = "blocked";
    r.detail = `refused: ${poll.error}`;
    return r;
  }
  if (poll.ms > RULES.slow_rtt_ms) r.verdict = "slow";
  r.detail = `answered in ${Math.round(poll.ms)} ms`;
  if (timing && timing.encodedBodySize > 0 && timing.encodedBodySize < timing.decodedBodySize) {
    r.detail += `; compressed on the path (${timing.encodedBodySize} bytes for ${timing.decodedBodySize})`;
    r.facts.compressed = true;
  }
  return r;
}
function recommended(reports) {
  const pick = (v) => reports.filter((r) => r.verdict === v).map((r) => r.transport);
  return pick("ok").length ? pick("ok") : pick("slow");
}

// src/doctor/diagnose.js
async function diagnose(url, options = {}) {
  const o = { count: 5, intervalMs: 250, idle: 10, hold: 10, ...options };
  const base = new URL(url, globalThis.location?.href).href.replace(/\/+$/, "");
  const pollUrl = `${base}/probe/poll?pad=2048&nonce=${Math.random().toString(36).slice(2)}`;
  const poll = await timedFetch(pollUrl);
  let hello = null;
  try {
    hello = poll.error ? null : JSON.parse(poll.text ?? "");
  } catch {
    poll.error = "not a probe answer (is this feedgate?)";
  }
  const clock = hello ? {
    // server clock minus ours (ms), known within half the round trip
    offset: hello.sent_us / 1e3 - (performance.timeOrigin + poll.t0 + poll.ms / 2),
    uncertainty: poll.ms / 2
  } : null;
  const timing = (
    /** @type {PerformanceResourceTiming | undefined} */
    performance.getEntriesByName?.(pollUrl)?.at(-1)
  );
  const params = { count: o.count, interval_ms: o.intervalMs, idle: o.idle };
  const budget = o.count * o.intervalMs + o.idle * 1e3 + 1e4;
  const [ws, sse, longpoll] = await Promise.all([
    probeStream("ws", base, params, budget),
    probeStream("sse", base, params, budget),
    (async () => {
      const quick = await timedFetch(`${base}/probe/longpoll?hold=0`);
      if (quick.error) return { quick };
      return { quick, held: await timedFetch(`${base}/probe/longpoll?hold=${o.hold}`, (o.hold + 15) * 1e3) };
    })()
  ]);
  const transports = [judgeStream(ws, clock, o), judgeStream(sse, clock, o), judgeLongPoll(longpoll, o.hold), judgePoll(poll, timing)];
  const notes = [];
  if (hello) {
    notes.push(
      `HTTP: this browser spoke ${timing?.nextHopProtocol || "?"}; feedgate was spoken to in ${hello.http}` + (hello.proxy_headers.length ? `, through a proxy (${hello.proxy_headers.join(", ")})` : " (no proxy headers seen)")
    );
    if (hello.http === "HTTP/1.0") notes.push("the proxy speaks HTTP/1.0 to feedgate: `proxy_http_version 1.1;`");
  }
  return { url: base, transports, recommended: recommended(transports), notes };
}
export {
  FeedgateCloseEvent,
  FeedgateMessageEvent,
  FeedgateSocket,
  GapEvent,
  ResetEvent,
  TRANSPORTS,
  TopicErrorEvent,
  TransportChangeEvent,
  diagnose
};
