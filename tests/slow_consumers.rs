//! The log is the buffer: subscribers that stop reading while tens of MB are
//! published cost the server bounded memory, and when they read again they
//! get what is still retained, in order, after an explicit gap notice.

mod common;

use common::*;
use feedgate::client::{Delivery, Endpoint, SubscribeOptions, Subscriber};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;

const RETAINED: u64 = 200;
const EVENTS: u64 = 640;
const EVENT_BYTES: usize = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscribers_cost_bounded_memory_and_catch_up_with_a_gap() {
    let (child, url) = spawn_binary(&[
        "--retention-events",
        &RETAINED.to_string(),
        "--write-timeout",
        "120s",
    ]);
    let pid = child.id();
    let ep = Endpoint::parse(&url).unwrap();
    feedgate::client::publish(&ep, "big", b"0".to_vec())
        .await
        .unwrap();
    let from_start = Cursor {
        after: Some(0),
        epoch: None,
    };
    // Subscribe, take the first event, then stop reading.
    let mut subs = Vec::new();
    for t in [Transport::Ws, Transport::Sse] {
        let mut sub = Subscriber::connect(&ep, "big", t, from_start, SubscribeOptions::default())
            .await
            .unwrap();
        assert!(matches!(next(&mut sub).await, Delivery::Event(e) if e.seq == 1));
        subs.push(sub);
    }
    let baseline = rss_kib(pid);

    // ~40 MB published while both subscribers read nothing.
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(EVENT_BYTES));
    let mut peak = baseline;
    for i in 0..EVENTS {
        feedgate::client::publish(&ep, "big", body.clone().into_bytes())
            .await
            .unwrap();
        if i % 64 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    peak = peak.max(rss_kib(pid));
    let published_kib = EVENTS * EVENT_BYTES as u64 / 1024;
    let retained_kib = RETAINED * EVENT_BYTES as u64 / 1024;
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "published {published_kib} KiB; retention holds {retained_kib} KiB; server RSS grew {growth} KiB"
    );
    // Retention plus per-connection write buffers, far below what was sent.
    assert!(
        growth < retained_kib + 16 * 1024,
        "RSS grew {growth} KiB for {published_kib} KiB published"
    );

    // Reading again: what was in flight, then a gap, then the retained tail.
    let last = EVENTS + 1;
    for mut sub in subs {
        let t = sub.transport();
        let mut prev = 1;
        let mut gap = None;
        let mut told_gap = false;
        while prev < last {
            match next(&mut sub).await {
                Delivery::Event(e) => {
                    let expected = gap.take().unwrap_or(prev + 1);
                    assert_eq!(e.seq, expected, "{t:?} in order, none twice");
                    prev = e.seq;
                }
                Delivery::Gap { missed, resume_seq } => {
                    assert_eq!(resume_seq, prev + 1 + missed, "{t:?} gap arithmetic");
                    assert!(
                        resume_seq > last - RETAINED,
                        "{t:?} resumes within retention"
                    );
                    gap = Some(resume_seq);
                    told_gap = true;
                }
                other => panic!("{t:?}: {other:?}"),
            }
        }
        assert!(sub.cursor().after == Some(last), "{t:?} got to the end");
        assert!(told_gap, "{t:?} fell behind retention and must be told so");
    }
    assert!(terminate(child).success());
}
