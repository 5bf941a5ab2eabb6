//! One comparison run: start (or reach) the server, connect every
//! subscriber, publish on schedule, wait for the subscribers to catch up,
//! end them at a response boundary, and add up what both sides counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::BenchError;
use super::args::{Plan, Target};
use super::child::{self, ChildServer};
use super::dialect::{Publisher, Signals, Source};
use super::inproc::{self, InProcess};
use super::model;
use super::payload;
use super::report::{
    Cpu, Latency, Params, PublishFigures, RedisFigures, Report, SCHEMA, TransportFigures,
};
use super::scrape::{self, Sample};
use super::sys::{self, Machine};
use super::tally::{Recorder, Tally};
use crate::client::{Endpoint, Link, SubscribeOptions, Trust, Wire};
use crate::protocol::Transport;
use crate::protocol::unix_micros;

/// Subscribers connecting at once: enough to be quick, few enough not to
/// overflow the listener's accept backlog (which costs a 1 s SYN retry).
const CONNECTS_IN_FLIGHT: usize = 256;
/// How long subscribers get to see the end marker and stop by themselves.
const END_GRACE: Duration = Duration::from_secs(5);
/// How long the server gets to notice the subscribers' closes.
const SETTLE: Duration = Duration::from_secs(5);
/// Longest wait for every long poller to be held before the first publish.
const HELD_WAIT: Duration = Duration::from_secs(30);

/// Runs one comparison and returns its figures.
///
/// # Errors
/// When the server cannot be started or reached, or nothing could be
/// published. Subscriber failures are counted in the report, not returned.
pub async fn run(plan: &Plan) -> Result<Report, BenchError> {
    plan.validate()?;
    let mut machine = Machine::now();
    let connections = plan.total_clients();
    let in_process = plan.url.is_none() && !plan.child_server;
    // Both ends of every connection live in this process when the server
    // does; leave room for the runtime's own descriptors.
    let sockets = if in_process {
        connections * 2
    } else {
        connections
    };
    let nofile = sys::raise_nofile(sockets as u64 + 1_024);
    if sockets as u64 + 256 > nofile {
        return Err(BenchError::Usage(format!(
            "{connections} subscribers need {sockets} sockets here but the open-file limit is {nofile}{}",
            if in_process {
                "; run the server as its own process (--child-server, or --url and --pid)"
            } else {
                ""
            }
        )));
    }
    let mut servers = Vec::new();
    if in_process {
        for _ in 0..plan.nodes {
            let mut config = inproc::config(connections, plan.events() + 1, plan.longpoll_timeout);
            if let Some(url) = &plan.redis {
                config.log = crate::LogBackend::Redis(url.clone());
            }
            if plan.link.tls {
                config.tls = Some(crate::tls::TlsSource::SelfSigned);
            }
            servers.push(InProcess::start(config, plan.server_threads).await?);
        }
    }
    let child = match (&plan.url, plan.child_server) {
        (None, true) => Some(ChildServer::spawn(
            connections,
            plan.longpoll_timeout,
            plan.link.tls,
        )?),
        _ => None,
    };
    let (url, pid) = match (servers.first(), &child, &plan.url) {
        (Some(s), _, _) => (plan.url_of(s.addr()), None),
        (_, Some(c), _) => (c.url().to_owned(), Some(c.pid())),
        (_, _, Some(u)) => (u.clone(), plan.pid),
        _ => unreachable!("no url means a server of our own"),
    };
    // A server of the bench's own has a certificate made for this run, on
    // loopback: trusted as it is.
    let trust = match plan.url {
        Some(_) => plan.trust.clone(),
        None => Trust::Insecure,
    };
    let endpoint = |url: &str| {
        Endpoint::parse_with(url, trust.clone()).map(|ep| ep.with_http2(plan.link.http2))
    };
    let ep = endpoint(&url)?;
    if child.is_some() {
        child::wait_healthy(&ep).await?;
    }
    // Every node (one unless --nodes): the publisher uses the first,
    // subscribers are spread over all, and the server side is their sum.
    let mut eps = vec![ep];
    for s in servers.iter().skip(1) {
        eps.push(endpoint(&plan.url_of(s.addr()))?);
    }
    let result = measure(plan, &eps, &url, in_process, pid, &mut machine).await;
    for s in servers {
        s.stop().await;
    }
    drop(child);
    result
}

async fn measure(
    plan: &Plan,
    eps: &[Endpoint],
    url: &str,
    in_process: bool,
    pid: Option<u32>,
    machine: &mut Machine,
) -> Result<Report, BenchError> {
    let ep = &eps[0];
    let feedgate = plan.target == Target::Feedgate;
    let topic = format!("bench-{:016x}", rand::random::<u64>());
    // One topic keeps the single-topic paths; K spread the events.
    let topics: Vec<String> = match plan.topics {
        1 => vec![topic.clone()],
        k => (0..k).map(|i| format!("{topic}-{i}")).collect(),
    };
    let before = if feedgate {
        Some(scrape::scrape_all(eps).await?)
    } else {
        None
    };
    let sources = sys::source_addrs(plan.total_clients(), plan.source_addrs);

    // Subscribers first: all connected before the first publish.
    let tallies: Vec<(Transport, Arc<Tally>)> = plan
        .transports
        .iter()
        .map(|t| (*t, Arc::new(Tally::default())))
        .collect();
    let stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    let mut k = 0usize;
    for (t, tally) in &tallies {
        for _ in 0..plan.clients {
            let node = &eps[k % eps.len()];
            let ep = match sources.get(k % sources.len().max(1)) {
                Some(ip) => node.clone().with_local_addr(*ip),
                None => node.clone(),
            };
            k += 1;
            // Short pollers start at a random phase, as independent clients
            // would; otherwise they poll in lockstep.
            let phase = if *t == Transport::Poll {
                plan.poll_interval.mul_f64(rand::random::<f64>())
            } else {
                Duration::ZERO
            };
            let sub = SubscriberTask {
                plan: plan.clone(),
                ep,
                topics: topics.clone(),
                transport: *t,
                tally: tally.clone(),
                permits: permits.clone(),
                ready: ready.clone(),
                stop: stop.clone(),
                phase,
            };
            tasks.spawn(sub.run());
        }
    }
    let progress = if plan.progress {
        let bar = ProgressBar::new(plan.total_clients() as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    progress.set_message("connecting");
    let total = plan.total_clients() as u64;
    while ready.load(Ordering::Relaxed) < total {
        progress.set_position(ready.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long pollers are connected once their first request is held: wait for
    // the server to say so (its `feedgate_subscriptions` gauge), so that
    // setting up connections never shows as delivery latency.
    if feedgate && plan.transports.contains(&Transport::LongPoll) {
        let want = (plan.clients * plan.topics) as f64;
        let until = Instant::now() + HELD_WAIT;
        loop {
            let held = scrape::scrape_all(eps)
                .await?
                .sum("feedgate_subscriptions", &[("transport", "longpoll")]);
            if held >= want || Instant::now() > until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Publish on schedule.
    let events = plan.events();
    let delivered_now = || {
        tallies
            .iter()
            .map(|(_, t)| t.delivered.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    progress.set_length(events * total);
    progress.set_position(0);
    progress.set_message("publishing");
    let cpu_before = cpu_now(pid, in_process);
    let redis_before = match &plan.redis {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };
    let mut publisher = Publisher::connect(plan.target, ep, &topics).await?;
    // The schedule and the stamps start at one instant, once the publisher
    // is connected: a connect that takes a while (a TLS handshake) must
    // neither shift the stamps ahead of the schedule (latencies below
    // zero) nor count as the first events' latency.
    let wall = Instant::now();
    let start_us = unix_micros();
    let mut published = 0u64;
    let mut payload_bytes = 0u64;
    let mut publish_errors = 0u64;
    let mut first_publish_error = None;
    let mut last_tick = Instant::now();
    for i in 0..events {
        let offset = Duration::from_secs_f64(i as f64 / plan.rate);
        tokio::time::sleep_until((wall + offset).into()).await;
        // Stamped with the time it was *scheduled* for: when the publisher
        // falls behind (a slow publish ack), the lag counts as latency
        // instead of silently thinning the schedule (coordinated omission).
        let stamp = start_us + offset.as_micros() as u64;
        let body = payload::build_kind(plan.payload_kind, i, stamp, plan.payload);
        let len = body.len();
        match publisher.publish(i, body).await {
            Ok(()) => {
                published += 1;
                payload_bytes += len as u64;
            }
            Err(e) => {
                publish_errors += 1;
                first_publish_error.get_or_insert(e.to_string());
            }
        }
        if last_tick.elapsed() > Duration::from_millis(100) {
            progress.set_position(delivered_now());
            last_tick = Instant::now();
        }
    }
    let publish_s = wall.elapsed().as_secs_f64();
    if published == 0 {
        stop.cancel();
        return Err(BenchError::Server(format!(
            "no publish succeeded: {}",
            first_publish_error.unwrap_or_default()
        )));
    }

    // Wait for every subscriber to have everything (or the drain to pass).
    progress.set_message("draining");
    let connected: u64 = tallies
        .iter()
        .map(|(_, t)| t.connected.load(Ordering::Relaxed))
        .sum();
    let want = published * connected;
    let drain_until = Instant::now() + plan.drain;
    while delivered_now() < want && Instant::now() < drain_until {
        progress.set_position(delivered_now());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let active_s = wall.elapsed().as_secs_f64();
    progress.set_position(delivered_now());
    let cpu_after = cpu_now(pid, in_process);
    let redis_after = match &plan.redis {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };

    // End the subscribers at a response boundary, then the stragglers.
    progress.set_message("ending");
    // Topic 0: every subscriber follows it, on whichever connection.
    let _ = publisher.publish(0, payload::END.to_vec()).await;
    let pub_bytes = publisher.bytes().clone();
    drop(publisher);
    let grace = END_GRACE + plan.poll_interval;
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        stop.cancel();
        while tasks.join_next().await.is_some() {}
    }
    progress.finish_and_clear();

    let after = match &before {
        Some(b) => Some(settled_scrape(eps, b, &plan.transports).await?),
        None => None,
    };
    machine.load_after = sys::load_average();
    let cpu = Cpu {
        server_s: match (cpu_before.0, cpu_after.0) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        bench_s: cpu_after.1 - cpu_before.1,
        wall_s: active_s,
    };
    let shape = model::Shape {
        // The mean of what was published (realistic kinds vary in size).
        payload: (payload_bytes as f64 / published as f64).round() as usize,
        lean: plan.lean,
        deflate: plan.deflate,
        topic_len: topic.len(),
        host_len: ep.host_header().len(),
        published,
        timeout_digits: plan.longpoll_timeout.as_secs_f64().to_string().len(),
    };
    let rows = tallies
        .iter()
        .map(|(t, tally)| {
            let mut row = figures(
                plan,
                *t,
                tally,
                published,
                active_s,
                before.as_ref().zip(after.as_ref()),
            );
            // The model is of one topic on its own path, on HTTP/1.1 in
            // the clear.
            if feedgate && plan.topics == 1 && plan.link == Link::default() {
                let counted = model::Counted {
                    delivered: row.delivered,
                    requests: row.requests,
                    empty_responses: row.empty_responses,
                };
                row.model = model::predict(*t, &shape, counted);
                row.model_deviation = row.model.map(|m| {
                    (row.bytes_per_event_down + row.bytes_per_event_up) / (m.down + m.up) - 1.0
                });
            }
            row
        })
        .collect();
    Ok(Report {
        schema: SCHEMA.to_owned(),
        target: plan.target.as_str().to_owned(),
        url: url.to_owned(),
        in_process,
        pid,
        params: Params {
            transports: plan
                .transports
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            topics: plan.topics,
            split_topics: plan.split_topics,
            clients: plan.clients,
            rate: plan.rate,
            payload: plan.payload,
            payload_kind: plan.payload_kind,
            deflate: plan.deflate,
            encoding: if plan.lean { "lean" } else { "json" }.to_owned(),
            link: plan.link.name().to_owned(),
            duration_s: plan.duration.as_secs_f64(),
            poll_interval_s: plan.poll_interval.as_secs_f64(),
            longpoll_timeout_s: plan.longpoll_timeout.as_secs_f64(),
        },
        machine: machine.clone(),
        publish: PublishFigures {
            published,
            errors: publish_errors,
            rate_achieved: published as f64 / publish_s.max(1e-9),
            client_bytes_up: pub_bytes.written(),
            client_bytes_down: pub_bytes.read(),
        },
        transports: rows,
        cpu,
        elapsed_s: active_s,
        redis: redis_before.zip(redis_after).map(|(b, a)| {
            // The INFO that read `b` was counted in neither reading; the
            // commands between are the gateways'.
            let commands = a.saturating_sub(b);
            let delivered: u64 = tallies
                .iter()
                .map(|(_, t)| t.delivered.load(Ordering::Relaxed))
                .sum();
            RedisFigures {
                nodes: plan.nodes,
                commands,
                per_published_event: commands as f64 / published.max(1) as f64,
                per_delivered_event: commands as f64 / delivered.max(1) as f64,
            }
        }),
    })
}

/// Commands Redis has executed so far (`INFO commandstats`, summed over
/// every command but `INFO` itself).
async fn redis_calls(url: &str) -> Result<u64, BenchError> {
    let fail = |e: redis::RedisError| BenchError::Server(format!("redis at {url}: {e}"));
    let client = redis::Client::open(url).map_err(fail)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(fail)?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .map_err(fail)?;
    Ok(commandstats_calls(&info))
}

/// Sums `calls=N` over the `cmdstat_*` lines, leaving out `INFO`.
fn commandstats_calls(info: &str) -> u64 {
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| !l.starts_with("info:"))
        .filter_map(|l| {
            l.split_once("calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// (server CPU seconds if known, load-generator CPU seconds).
fn cpu_now(pid: Option<u32>, in_process: bool) -> (Option<f64>, f64) {
    let me = sys::process_cpu(None).unwrap_or(0.0);
    if in_process {
        let server = sys::threads_cpu(inproc::THREAD_PREFIX);
        (Some(server), me - server)
    } else {
        (pid.and_then(|p| sys::process_cpu(Some(p))), me)
    }
}

/// Scrapes once the server has seen every bench connection close (its
/// connection gauges are back where they started), so that the bytes of
/// the last requests and close handshakes are in the counters.
async fn settled_scrape(
    eps: &[Endpoint],
    before: &Sample,
    transports: &[Transport],
) -> Result<Sample, BenchError> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = scrape::scrape_all(eps).await?;
        let settled = transports
            .iter()
            .chain(&[Transport::Publish])
            .all(|t| s.connections(*t) <= before.connections(*t));
        if settled || Instant::now() > deadline {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn figures(
    plan: &Plan,
    t: Transport,
    tally: &Tally,
    published: u64,
    active_s: f64,
    server: Option<(&Sample, &Sample)>,
) -> TransportFigures {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let delivered = get(&tally.delivered);
    let expected = published * plan.clients as u64;
    let (down, up) = (get(&tally.bytes_down), get(&tally.bytes_up));
    let per = |b: u64| {
        if delivered == 0 {
            0.0
        } else {
            b as f64 / delivered as f64
        }
    };
    let requests = get(&tally.requests);
    let empty = get(&tally.empty);
    let server = server.map(|(before, after)| after.delta(before, t));
    TransportFigures {
        transport: t.as_str().to_owned(),
        clients: plan.clients,
        connected: get(&tally.connected),
        errors: get(&tally.errors),
        first_error: tally
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        dup: get(&tally.dup),
        reordered: get(&tally.reordered),
        gaps: get(&tally.gaps),
        resets: get(&tally.resets),
        deliveries_per_s: delivered as f64 / active_s.max(1e-9),
        latency: Latency::of(&tally.histogram()),
        client_bytes_down: down,
        client_bytes_up: up,
        message_bytes: get(&tally.message_bytes),
        bytes_per_event_down: per(down),
        bytes_per_event_up: per(up),
        overhead_x: per(down + up) / plan.payload as f64,
        requests,
        empty_responses: empty,
        events_per_response: if requests > empty {
            delivered as f64 / (requests - empty) as f64
        } else {
            0.0
        },
        bytes_agree: server
            .as_ref()
            .map(|s| s.wire_out == down && s.wire_in == up),
        links: tally.links(),
        model: None,
        model_deviation: None,
        server,
    }
}

/// One subscriber of the run.
struct SubscriberTask {
    plan: Plan,
    ep: Endpoint,
    topics: Vec<String>,
    transport: Transport,
    tally: Arc<Tally>,
    permits: Arc<Semaphore>,
    ready: Arc<AtomicU64>,
    stop: CancellationToken,
    phase: Duration,
}

impl SubscriberTask {
    async fn run(self) {
        let tally = &self.tally;
        let connecting = self.permits.acquire().await;
        let source = Source::connect(
            self.plan.target,
            &self.ep,
            &self.topics,
            self.plan.split_topics,
            self.transport,
            SubscribeOptions {
                poll_interval: self.plan.poll_interval,
                longpoll_timeout: self.plan.longpoll_timeout,
                resume: None,
            },
            Wire {
                lean: self.plan.lean,
                deflate: self.plan.deflate,
            },
        )
        .await;
        drop(connecting);
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                tally.error(e);
                self.ready.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        tally.connected.fetch_add(1, Ordering::Relaxed);
        self.ready.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(self.phase) => {}
            _ = self.stop.cancelled() => {}
        }
        let mut rec = Recorder::new(tally);
        let mut signals = Signals::default();
        let mut messages = Vec::new();
        'run: loop {
            let next = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                r = source.next(&mut messages, &mut signals) => r,
            };
            if let Err(e) = next {
                tally.error(e);
                break;
            }
            let now = unix_micros();
            for m in messages.drain(..) {
                if payload::is_end(&m) {
                    break 'run;
                }
                tally
                    .message_bytes
                    .fetch_add(m.len() as u64, Ordering::Relaxed);
                if let Some(s) = payload::parse(&m) {
                    rec.on(s.n, s.t_us, now);
                }
            }
        }
        drop(rec);
        tally.gaps.fetch_add(signals.gaps, Ordering::Relaxed);
        tally.resets.fetch_add(signals.resets, Ordering::Relaxed);
        if let Some(link) = source.link() {
            tally.used(link);
        }
        let (stats, bytes) = source.close().await;
        tally.requests.fetch_add(stats.requests, Ordering::Relaxed);
        tally.empty.fetch_add(stats.empty, Ordering::Relaxed);
        tally.bytes_down.fetch_add(bytes.read(), Ordering::Relaxed);
        tally.bytes_up.fetch_add(bytes.written(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod redis_tests {
    #[test]
    fn sums_commandstats_without_info() {
        let info = "# Commandstats\r\ncmdstat_evalsha:calls=20,usec=1\r\ncmdstat_info:calls=5,usec=2\r\ncmdstat_xread:calls=7,usec=3\r\n";
        assert_eq!(super::commandstats_calls(info), 27);
    }
}
