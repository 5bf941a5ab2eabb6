//! `serve --demo`: a built-in publisher of ticker-like events on topic
//! `demo`, and the faults the demo page can inject into transports (which
//! `transport::feed` applies around each subscriber).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use std::sync::Arc;

use crate::error::ApiError;
use crate::log::{Log, Topic};
use crate::metrics::Metrics;
use crate::metrics::Transport;

/// The topic the demo publisher writes to.
pub const TOPIC: &str = "demo";

/// Fastest demo publish rate accepted, events per second.
pub const MAX_RATE: f64 = 1_000.0;
/// Slowest demo publish rate accepted, events per second (one event every
/// 100 s). Any positive rate would pass a `> 0` check, but the publisher
/// ticks every `1 / rate` seconds, which for a tiny rate is no `Duration`.
pub const MIN_RATE: f64 = 0.01;
/// Largest demo payload accepted, bytes.
pub const MAX_PAYLOAD: usize = 64 << 10;
/// Most demo bytes published per second (`rate × payload`): the largest
/// payload at the fastest rate would be 64 MiB/s into the log and out to
/// every subscriber. The page's largest choice, 100/s of 8 KB, fits.
pub const MAX_BYTES_PER_SEC: f64 = (1 << 20) as f64;

/// What `--demo` lets the page change at run time: the publisher's rate and
/// payload size, and injected transport faults. Never present without
/// `--demo`, so none of this is reachable on a production server.
pub struct DemoState {
    settings: watch::Sender<Settings>,
    faults: watch::Sender<Faults>,
}

/// The demo publisher's settings (`GET`/`POST /demo/settings`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Events per second.
    pub rate: f64,
    /// Approximate size of each event's `data`, bytes (padded with a `pad`
    /// string field); 0 means the natural size of a quote.
    pub payload: usize,
}

/// How an injected fault breaks a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Works normally.
    #[default]
    Ok,
    /// Refused with `503` (a WebSocket upgrade is not accepted).
    Refuse,
    /// Accepted but nothing is delivered, as behind a buffering proxy.
    Stall,
}

/// The injected faults, per subscriber transport (`GET`/`POST /demo/faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// WebSocket.
    pub ws: Fault,
    /// Server-Sent Events.
    pub sse: Fault,
    /// Long polling.
    pub longpoll: Fault,
    /// Short polling.
    pub poll: Fault,
}

impl DemoState {
    /// The state for a `--demo` server starting at `rate` events per second.
    pub fn new(rate: f64) -> Self {
        let (settings, _) = watch::channel(Settings {
            rate: rate.clamp(MIN_RATE, MAX_RATE),
            payload: 0,
        });
        let (faults, _) = watch::channel(Faults::default());
        DemoState { settings, faults }
    }

    /// The current publisher settings.
    pub fn settings(&self) -> Settings {
        *self.settings.borrow()
    }

    /// Changes the publisher settings.
    ///
    /// # Errors
    /// [`ApiError::InvalidQuery`] when a value is out of range.
    pub fn set_settings(&self, s: Settings) -> Result<(), ApiError> {
        if !(MIN_RATE..=MAX_RATE).contains(&s.rate) {
            return Err(ApiError::InvalidQuery(format!(
                "rate must be in [{MIN_RATE}, {MAX_RATE}] events per second"
            )));
        }
        if s.payload > MAX_PAYLOAD {
            return Err(ApiError::InvalidQuery(format!(
                "payload must be at most {MAX_PAYLOAD} bytes"
            )));
        }
        if s.rate * s.payload as f64 > MAX_BYTES_PER_SEC {
            return Err(ApiError::InvalidQuery(format!(
                "rate × payload must be at most {MAX_BYTES_PER_SEC} bytes per second"
            )));
        }
        self.settings.send_replace(s);
        Ok(())
    }

    /// The injected faults.
    pub fn faults(&self) -> Faults {
        *self.faults.borrow()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, f: Faults) {
        self.faults.send_replace(f);
    }

    /// The fault injected on `t`.
    pub fn fault(&self, t: Transport) -> Fault {
        self.faults().get(t)
    }

    /// Resolves once a fault is injected on `t` (at once if one is now).
    pub async fn broken(&self, t: Transport) {
        let mut rx = self.faults.subscribe();
        if rx.wait_for(|f| f.get(t) != Fault::Ok).await.is_err() {
            // Unreachable while `self` lives: it owns the sender.
            std::future::pending::<()>().await;
        }
    }
}

impl Faults {
    /// The fault on `t` (always [`Fault::Ok`] for non-subscriber transports).
    pub fn get(&self, t: Transport) -> Fault {
        match t {
            Transport::Ws => self.ws,
            Transport::Sse => self.sse,
            Transport::LongPoll => self.longpoll,
            Transport::Poll => self.poll,
            _ => Fault::Ok,
        }
    }
}

/// Publishes a realistic quote on [`TOPIC`] at the demo rate until the
/// server stops.
pub(crate) async fn publisher(
    demo: Arc<DemoState>,
    log: Log,
    metrics: Arc<Metrics>,
    mut stop: crate::sync::stop_signal::StopWatch,
) {
    let topic = Topic::new(TOPIC).expect("the demo topic is a valid name");
    let mut settings_rx = demo.settings.subscribe();
    let mut quote = Quote::default();
    loop {
        let settings = *settings_rx.borrow_and_update();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / settings.rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.stopped() => return,
                _ = settings_rx.changed() => break,
                _ = tick.tick() => {}
            }
            if publish_one(&log, &topic, &mut quote, settings.payload).await {
                metrics.published.inc();
            }
        }
    }
}

/// Publishes the next quote; `false` when the log refused it (logged).
async fn publish_one(log: &Log, topic: &Topic, quote: &mut Quote, payload: usize) -> bool {
    let mut data = quote.step();
    if payload > data.len() + 10 {
        // `,"pad":"xxx…"` brings the value up to the asked size.
        data.pop();
        data.push_str(",\"pad\":\"");
        data.extend(std::iter::repeat_n('x', payload - data.len() - 2));
        data.push_str("\"}");
    }
    match log.append(topic, data.as_bytes()).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "demo publish failed");
            false
        }
    }
}

/// A random walk that looks like a market data feed.
struct Quote {
    n: u64,
    mid: f64,
    volume: u64,
}

impl Default for Quote {
    fn default() -> Self {
        Quote {
            n: 0,
            mid: 100.0,
            volume: 0,
        }
    }
}

impl Quote {
    fn step(&mut self) -> String {
        self.n += 1;
        let drift: f64 = rand::random::<f64>() - 0.5;
        self.mid = (self.mid + drift * 0.2).max(1.0);
        let spread = 0.01 + rand::random::<f64>() * 0.04;
        let size = 1 + rand::random::<u64>() % 500;
        self.volume += size;
        format!(
            r#"{{"symbol":"FGT","n":{},"bid":{:.2},"ask":{:.2},"last":{:.2},"size":{},"volume":{}}}"#,
            self.n,
            self.mid - spread / 2.0,
            self.mid + spread / 2.0,
            self.mid,
            size,
            self.volume
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_range_checked() {
        let d = DemoState::new(5.0);
        assert!(
            d.set_settings(Settings {
                rate: 0.0,
                payload: 0
            })
            .is_err()
        );
        assert!(
            d.set_settings(Settings {
                rate: 1e9,
                payload: 0
            })
            .is_err()
        );
        // Positive but too slow to have a tick interval (found by
        // fuzz/ws_control): refused instead of panicking the publisher.
        assert!(
            d.set_settings(Settings {
                rate: 1e-300,
                payload: 0
            })
            .is_err()
        );
        assert!(
            d.set_settings(Settings {
                rate: 2.0,
                payload: MAX_PAYLOAD + 1
            })
            .is_err()
        );
        // Each bound alone is met, but together they publish 64 MiB/s.
        assert!(
            d.set_settings(Settings {
                rate: MAX_RATE,
                payload: MAX_PAYLOAD
            })
            .is_err()
        );
        // The page's largest choice fits.
        d.set_settings(Settings {
            rate: 100.0,
            payload: 8192,
        })
        .unwrap();
        d.set_settings(Settings {
            rate: 2.0,
            payload: 512,
        })
        .unwrap();
        assert_eq!(d.settings().payload, 512);
    }

    #[test]
    fn faults_parse_partially() {
        let f: Faults = serde_json::from_str(r#"{"ws":"refuse","sse":"stall"}"#).unwrap();
        assert_eq!(f.ws, Fault::Refuse);
        assert_eq!(f.sse, Fault::Stall);
        assert_eq!(f.poll, Fault::Ok);
        assert!(serde_json::from_str::<Faults>(r#"{"websocket":"refuse"}"#).is_err());
    }

    #[tokio::test]
    async fn broken_resolves_when_a_fault_is_set() {
        let d = std::sync::Arc::new(DemoState::new(5.0));
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { d.broken(Transport::Sse).await }
        });
        // A fault on another transport does not wake it.
        d.set_faults(Faults {
            ws: Fault::Refuse,
            ..Faults::default()
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        d.set_faults(Faults {
            sse: Fault::Stall,
            ..Faults::default()
        });
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("broken() resolves")
            .unwrap();
        // Already broken: resolves at once.
        tokio::time::timeout(Duration::from_secs(5), d.broken(Transport::Sse))
            .await
            .unwrap();
    }

    #[test]
    fn quotes_are_valid_json() {
        let mut q = Quote::default();
        for i in 1..=3 {
            let v: serde_json::Value = serde_json::from_str(&q.step()).unwrap();
            assert_eq!(v["n"], i);
            assert!(v["bid"].as_f64().unwrap() < v["ask"].as_f64().unwrap());
        }
    }
}
