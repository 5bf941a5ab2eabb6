//! What every transport's messages become, whichever carried them: an
//! event JSON or a control message turns into the [`Step`]s of the topic
//! it is about.

use bytes::Bytes;

use super::delivery::signal;
use super::error::protocol;
use super::lean::Shape;
use super::topics::{Step, Topics};
use super::{ClientError, Delivery, ReceivedEvent};
use crate::protocol::{Control, Cursor, EventHead};

impl Topics {
    /// The topic a message is about: on a single-topic connection its one
    /// topic; on a multiplexed one the topic it names, `None` when that
    /// was let go meanwhile (its messages in flight are dropped).
    ///
    /// # Errors
    /// A message of a multiplexed connection that names no topic.
    pub(super) fn about(
        &self,
        shape: Shape,
        name: Option<&str>,
    ) -> Result<Option<usize>, ClientError> {
        if !shape.multiplexed {
            return Ok((!self.list.is_empty()).then_some(0));
        }
        let name = name.ok_or_else(|| protocol("a message of several topics names none"))?;
        Ok(self.index(name))
    }

    /// An event in the json encoding.
    ///
    /// # Errors
    /// When it is not an event object.
    pub(super) fn event(&mut self, shape: Shape, json: Bytes) -> Result<(), ClientError> {
        let head = EventHead::parse(&json).map_err(protocol)?;
        let (seq, time_us) = (head.seq, head.time);
        let Some(i) = self.about(shape, Some(&head.topic))? else {
            return Ok(());
        };
        let event = ReceivedEvent { seq, time_us, json };
        self.steps
            .push_back(Step::Deliver(i, Delivery::Event(event)));
        Ok(())
    }

    /// A control message: a position (`ready`, `subscribed`), a signal to
    /// deliver (`gap`, `reset`), or a refusal that fails the call.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an `error` message.
    pub(super) fn control(&mut self, shape: Shape, c: Control) -> Result<(), ClientError> {
        match &c {
            Control::Error(e) => {
                return Err(ClientError::Protocol(format!(
                    "the server refused {}: {} ({})",
                    e.topic.as_deref().unwrap_or_default(),
                    e.message,
                    e.code
                )));
            }
            Control::Unsubscribed { .. } | Control::Other => return Ok(()),
            _ => {}
        }
        let Some(i) = self.about(shape, c.topic())? else {
            return Ok(());
        };
        let lean_next = match &c {
            Control::Ready(p) | Control::Subscribed(p) => {
                self.steps
                    .push_back(Step::Stand(i, Cursor::at(p.next, p.epoch)));
                Some(p.next)
            }
            Control::Gap(g) => g.next,
            Control::Reset(r) => r.next,
            _ => None,
        };
        if let Some(n) = lean_next {
            self.list[i].lean_seq = n;
        }
        if let Some(d) = signal(c) {
            self.steps.push_back(Step::Deliver(i, d));
        }
        Ok(())
    }
}
