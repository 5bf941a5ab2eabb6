//! The protocol model: how many wire bytes each transport *should* spend
//! per event according to docs/protocol.md, from the sizes of its framing
//! alone. The report prints it next to the measurement, which must come
//! out within +1 % (the difference is connection setup: handshakes, the
//! `ready` message, the first request, the end marker).
//!
//! Sizes (E = event JSON, d = digits of a seq, H = `host:port`, L = topic):
//! - event JSON: `{"topic":"L","seq":d,"time":16,"data":P}` = 51 + L + d + P;
//! - WebSocket: E plus a 2-byte frame header (4 from 126 B, 10 from 64 KiB);
//! - SSE: `id: EPOCH:d\ndata: E\n\n` = 30 + d + E, in a chunk (hex size,
//!   two CRLFs);
//! - polls: a response head (status, content-type, etag, cache-control,
//!   content-length, date: 158 + d + digits of the length), a body of
//!   49 + d + events (commas between), a 304 head of 118 + d; requests
//!   `GET /topics/L/poll?after=d&epoch=16` (+ `&timeout=S` for long polls),
//!   `host`, `if-none-match` on short polls.
//!
//! With `encoding=lean` (docs/protocol.md, "Lean encoding") the event is
//! the payload P alone: WebSocket P plus its frame header; SSE
//! `id:d\ndata:P\n\n` = 11 + d + P; poll bodies hold P instead of E;
//! a lean long poll's head has no `etag` (28 + d bytes fewer) and every
//! request says `&encoding=lean` (14 bytes). With `--deflate`
//! (permessage-deflate, gzip on polls) sizes depend on the data: there is
//! no model for WebSocket and polls then, only the measurement.

use crate::protocol::Transport;

/// Bytes per event the protocol model predicts for a run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Model {
    /// Downstream.
    pub down: f64,
    /// Upstream.
    pub up: f64,
}

/// What a transport's row counted that the model sizes from (the report
/// copies them from its row; the model knows nothing of the report).
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    /// Distinct deliveries.
    pub delivered: u64,
    /// Requests made.
    pub requests: u64,
    /// Responses that carried no event.
    pub empty_responses: u64,
}

/// What the model needs to know about a run.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Payload bytes (the mean of what was published).
    pub payload: usize,
    /// `encoding=lean`.
    pub lean: bool,
    /// permessage-deflate offered (WebSocket sizes are then data-dependent).
    pub deflate: bool,
    /// Topic name length.
    pub topic_len: usize,
    /// `host:port` length.
    pub host_len: usize,
    /// Events published.
    pub published: u64,
    /// Long-poll `timeout=` value as sent.
    pub timeout_digits: usize,
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Average digits of the seqs 1..=n.
fn mean_digits(n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let mut total = 0u64;
    let mut lo = 1u64;
    let mut d = 1u64;
    while lo <= n {
        let hi = (lo.saturating_mul(10) - 1).min(n);
        total += (hi - lo + 1) * d;
        lo = lo.saturating_mul(10);
        d += 1;
    }
    total as f64 / n as f64
}

fn ws_header(len: f64) -> f64 {
    if len < 126.0 {
        2.0
    } else if len < 65_536.0 {
        4.0
    } else {
        10.0
    }
}

fn hex_digits(n: f64) -> f64 {
    let mut n = n.max(1.0) as u64;
    let mut d = 0.0;
    while n > 0 {
        n >>= 4;
        d += 1.0;
    }
    d
}

/// The model for one transport's row, using the row's own counts of
/// events and (for polls) responses.
pub fn predict(t: Transport, s: &Shape, row: Counted) -> Option<Model> {
    let n = row.delivered as f64;
    if n == 0.0 {
        return None;
    }
    let d = mean_digits(s.published);
    let event = if s.lean {
        s.payload as f64
    } else {
        51.0 + s.topic_len as f64 + d + s.payload as f64
    };
    let host = s.host_len as f64;
    let topic = s.topic_len as f64;
    // `&encoding=lean` on every request.
    let lean_query = if s.lean { 14.0 } else { 0.0 };
    let (down, up) = match t {
        // Compressed sizes depend on the data: measured, not modelled.
        Transport::Ws | Transport::Poll | Transport::LongPoll if s.deflate => return None,
        Transport::Ws => (event + ws_header(event), 0.0),
        Transport::Sse if s.lean => {
            let block = 11.0 + d + event;
            (block + hex_digits(block) + 4.0, 0.0)
        }
        Transport::Sse => {
            let block = 30.0 + d + event;
            (block + hex_digits(block) + 4.0, 0.0)
        }
        Transport::Poll | Transport::LongPoll => {
            let long = t == Transport::LongPoll;
            let empty = row.empty_responses as f64;
            let full = (row.requests as f64 - empty).max(0.0);
            let per_full_body = 49.0 + d;
            let avg_body = per_full_body + (n / full.max(1.0)) * (event + 1.0) - 1.0;
            // A lean long poll's answer has no `etag: "EPOCH:d"` line.
            let etag = if long && s.lean { 28.0 + d } else { 0.0 };
            let head = 158.0 + d + digits(avg_body as u64) as f64 - etag;
            let empty_answer = if long {
                // A long poll that timed out: 200 with no events.
                158.0 + d + 2.0 + 49.0 + d - etag
            } else {
                // A short poll with nothing new: 304 Not Modified.
                118.0 + d
            };
            let down =
                full * (head + per_full_body - 1.0) + n * (event + 1.0) + empty * empty_answer;
            let request = if long {
                4.0 + 8.0
                    + topic
                    + 9.0
                    + 7.0
                    + d
                    + 7.0
                    + 16.0
                    + 9.0
                    + s.timeout_digits as f64
                    + 11.0
                    + 6.0
                    + host
                    + 4.0
            } else {
                4.0 + 8.0 + topic + 5.0 + 7.0 + d + 7.0 + 16.0 + 11.0 + 6.0 + host + 4.0 + 36.0 + d
            };
            (down / n, row.requests as f64 * (request + lean_query) / n)
        }
        _ => return None,
    };
    Some(Model { down, up })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_helpers() {
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(mean_digits(9), 1.0);
        assert_eq!(mean_digits(10), 1.1);
        assert_eq!(hex_digits(255.0), 2.0);
        assert_eq!(hex_digits(256.0), 3.0);
    }
}
