//! What a subscriber may ask of the wire besides its transport — the lean
//! encoding (`encoding=lean`) and compression — and how lean events are
//! read (docs/protocol.md, "Lean encoding").
//!
//! A lean event carries only its data: its seq is counted from the last
//! `ready`, `subscribed`, `gap` or `reset` (each says `next`), or on a
//! single-topic SSE stream read from the `id:` line, or on polls counted
//! back from the answer's `next`. On a multiplexed stream the topic comes
//! first, `TOPIC DATA`.

use bytes::Bytes;

use super::delivery::lean_event;
use super::error::protocol;
use super::topics::{Step, Topics};
use super::{ClientError, Delivery};
use crate::protocol::lean;

/// Wire options of a subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wire {
    /// Ask for `encoding=lean`: events are their data.
    pub lean: bool,
    /// Ask for compression as browsers do: offer permessage-deflate on a
    /// WebSocket, send `Accept-Encoding: gzip` on polls.
    pub deflate: bool,
}

impl Wire {
    /// The query parameter this asks for, if any.
    pub fn query(&self) -> Option<&'static str> {
        self.lean.then_some(lean::QUERY)
    }

    /// The `Accept-Encoding` header a poll sends, if any.
    pub fn accept_encoding(&self) -> Option<(&'static str, String)> {
        self.deflate.then(|| ("accept-encoding", "gzip".to_owned()))
    }
}

/// How the messages of one connection read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Shape {
    /// A multiplexed path (`topics=LIST`): every message names its topic.
    pub multiplexed: bool,
    /// The lean encoding.
    pub lean: bool,
}

impl Topics {
    /// A lean event, `bytes` as sent, at `seq` when the transport says it
    /// (else one more than the topic's last).
    ///
    /// # Errors
    /// A multiplexed lean event without its topic.
    pub(super) fn lean_event(
        &mut self,
        shape: Shape,
        bytes: Bytes,
        seq: Option<u64>,
    ) -> Result<(), ClientError> {
        // A multiplexed stream writes the topic first: `TOPIC DATA`.
        let (name, at) = match shape.multiplexed {
            true => lean::split_topic(&bytes)
                .map(|(name, at)| (Some(name), at))
                .ok_or_else(|| protocol("a lean event without its topic"))?,
            false => (None, 0),
        };
        if let Some(i) = self.about(shape, name)? {
            self.lean_at(i, bytes.slice(at..), seq);
        }
        Ok(())
    }

    /// Topic `i`'s lean event `data`, at `seq` when the transport says it
    /// (else one more than the topic's last).
    pub(super) fn lean_at(&mut self, i: usize, data: Bytes, seq: Option<u64>) {
        let f = &mut self.list[i];
        let seq = seq.unwrap_or(f.lean_seq.saturating_add(1));
        f.lean_seq = seq;
        let event = Delivery::Event(lean_event(seq, data));
        self.steps.push_back(Step::Deliver(i, event));
    }
}
