//! `serve --demo`: a built-in publisher of ticker-like events on topic
//! `demo`, and the browser assets embedded in the binary.

use std::time::Duration;

use crate::app::App;

/// The demo page served at `/` (sources in `clients/demo/`).
pub const PAGE_HTML: &str = include_str!("../clients/demo/index.html");
/// The fallback-capable browser client served at `/feedgate.js`.
pub const CLIENT_JS: &str = include_str!("../clients/js/feedgate.js");

/// The topic the demo publisher writes to.
pub const TOPIC: &str = "demo";

/// Publishes a realistic quote on [`TOPIC`] at `--demo-rate` until the
/// server drains.
pub(crate) async fn publisher(app: App) {
    let rate = app.config().demo_rate.clamp(0.01, 10_000.0);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quote = Quote::default();
    loop {
        tokio::select! {
            _ = app.shutdown().cancelled() => return,
            _ = tick.tick() => {}
        }
        let data = quote.step();
        match app.log().append(TOPIC, data.as_bytes()).await {
            Ok(_) => app.metrics().published.inc(),
            Err(e) => tracing::warn!(error = %e, "demo publish failed"),
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
    fn quotes_are_valid_json() {
        let mut q = Quote::default();
        for i in 1..=3 {
            let v: serde_json::Value = serde_json::from_str(&q.step()).unwrap();
            assert_eq!(v["n"], i);
            assert!(v["bid"].as_f64().unwrap() < v["ask"].as_f64().unwrap());
        }
    }
}
