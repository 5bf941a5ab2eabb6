//! The lean encoding's forms (docs/protocol.md, "Lean encoding"): an event
//! is its data alone; a control message is `#` and its JSON (no JSON value
//! starts with `#`); on a multiplexed stream an event is `TOPIC DATA` (a
//! topic has no space).

/// The query parameter that asks for it.
pub const QUERY: &str = "encoding=lean";

/// What starts a lean control message.
pub const CONTROL_MARK: u8 = b'#';

/// A lean message: a control message's JSON, or an event's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeanMessage<'a> {
    /// The JSON after the `#`.
    Control(&'a [u8]),
    /// Data (single topic) or `TOPIC DATA` (multiplexed).
    Event(&'a [u8]),
}

/// Tells a lean WebSocket frame's kind.
pub fn lean_message(frame: &[u8]) -> LeanMessage<'_> {
    match frame.split_first() {
        Some((&CONTROL_MARK, json)) => LeanMessage::Control(json),
        _ => LeanMessage::Event(frame),
    }
}

/// Splits a multiplexed lean event, `TOPIC DATA`, into its topic and the
/// offset of its data; `None` without a space.
pub fn split_topic(event: &[u8]) -> Option<(&str, usize)> {
    let space = event.iter().position(|&b| b == b' ')?;
    let topic = std::str::from_utf8(&event[..space]).ok()?;
    Some((topic, space + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_controls_from_events_and_topics_from_data() {
        assert_eq!(lean_message(b"#{}"), LeanMessage::Control(b"{}"));
        assert_eq!(lean_message(b"{\"a\":1}"), LeanMessage::Event(b"{\"a\":1}"));
        assert_eq!(split_topic(b"prices {\"bid\":1}"), Some(("prices", 7)));
        assert_eq!(split_topic(b"nospace"), None);
    }
}
