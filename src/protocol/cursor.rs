//! Cursors: where a reader stands in a topic's log, and their text form
//! `N` or `EPOCH:N` — the `after=` parameter, the SSE event id, the poll
//! `ETag` (quoted) and the cursor of a LIST item.

use std::fmt;

use super::{Epoch, Malformed};

/// Where a reader wants to start: a position in one epoch of a topic's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Deliver events with `seq > after`. `None` means "from now": start at
    /// the head as it is when the subscription begins.
    pub after: Option<u64>,
    /// The epoch the `after` seq belongs to, when the client knows it. A
    /// mismatch with the log's epoch is a reset.
    pub epoch: Option<Epoch>,
}

impl Cursor {
    /// Whether this cursor is "nothing seen of a topic that had no epoch
    /// yet" (`0000000000000000:0`): it continues into the epoch the first
    /// publish creates, without a reset.
    pub fn continues_into_first_epoch(&self) -> bool {
        self.epoch == Some(Epoch::NONE) && self.after == Some(0)
    }

    /// A cursor at `after` in `epoch`.
    pub fn at(after: u64, epoch: Epoch) -> Self {
        Cursor {
            after: Some(after),
            epoch: Some(epoch),
        }
    }

    /// Parses a cursor's text: `N` or `EPOCH:N` (surrounding white space
    /// allowed).
    ///
    /// # Errors
    /// [`Malformed::Cursor`] when it is neither.
    pub fn parse(text: &str) -> Result<Cursor, Malformed> {
        let text = text.trim();
        let (epoch_part, seq_part) = match text.split_once(':') {
            Some((e, s)) => (Some(e), s),
            None => (None, text),
        };
        let after = seq_part
            .parse::<u64>()
            .ok()
            .filter(|_| !seq_part.is_empty() && seq_part.bytes().all(|b| b.is_ascii_digit()));
        let Some(after) = after else {
            return Err(Malformed::Cursor(format!(
                "expected N or EPOCH:N with N a non-negative integer, got {text:?}"
            )));
        };
        Ok(Cursor {
            after: Some(after),
            epoch: epoch_part.map(parse_epoch).transpose()?,
        })
    }

    /// The cursor's text, `N` or `EPOCH:N`; `None` for "from now", which
    /// has none.
    pub fn text(&self) -> Option<String> {
        let after = self.after?;
        Some(match self.epoch {
            Some(e) => CursorText(e, after).to_string(),
            None => after.to_string(),
        })
    }
}

/// Parses an epoch as a cursor or `epoch=` names it.
///
/// # Errors
/// [`Malformed::Cursor`] for anything but 1 to 16 hex digits.
pub fn parse_epoch(text: &str) -> Result<Epoch, Malformed> {
    text.parse()
        .map_err(|e| Malformed::Cursor(format!("epoch {text:?}: {e}")))
}

/// Formats a cursor as text (`EPOCH:N`), the inverse of [`Cursor::parse`].
pub fn format_cursor(epoch: Epoch, seq: u64) -> String {
    CursorText(epoch, seq).to_string()
}

/// A cursor's text (`EPOCH:N`) to write in place, without a `String`
/// (the poll `ETag`, an SSE event's `id:`).
pub struct CursorText(pub Epoch, pub u64);

impl fmt::Display for CursorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_and_write_both_forms() {
        assert_eq!(
            Cursor::parse("17").unwrap(),
            Cursor {
                after: Some(17),
                epoch: None
            }
        );
        let c = Cursor::parse("00000000000000ff:3").unwrap();
        assert_eq!(c, Cursor::at(3, Epoch(255)));
        assert_eq!(c.text().as_deref(), Some("00000000000000ff:3"));
        assert_eq!(Cursor::parse("5").unwrap().text().as_deref(), Some("5"));
        assert_eq!(Cursor::default().text(), None);
        for bad in [
            "",
            "-1",
            "+1",
            "x",
            "1:",
            ":1",
            "zz:1",
            "1.5",
            "99999999999999999999",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
