//! Parsers for everything a client puts in a URL or header: topic names,
//! query strings, cursors (`after`, `epoch`, `Last-Event-ID`, `If-None-Match`);
//! and the durations of the command line's flags (`30s`, `250ms`), shared by
//! `feedgate serve`, `tail` and `bench`.
//!
//! They are pure functions over untrusted text, kept together so they can be
//! fuzzed (see `fuzz/`) and so every transport reads cursors the same way.

use std::time::Duration;

use crate::error::ApiError;
use crate::protocol::{Cursor, Malformed, Topic, parse_epoch};

pub use crate::protocol::{CursorText, ListItem, MAX_TOPIC_LEN, format_cursor, list_item};

impl From<Malformed> for ApiError {
    fn from(e: Malformed) -> ApiError {
        match e {
            Malformed::Topic => ApiError::InvalidTopic,
            Malformed::Cursor(why) => ApiError::InvalidCursor(why),
            Malformed::List(why) => ApiError::InvalidQuery(why),
            Malformed::TooManyTopics(max) => ApiError::TooManyTopics(max),
        }
    }
}

/// Checks a topic name against `[A-Za-z0-9_.:-]{1,128}`.
///
/// # Errors
/// [`ApiError::InvalidTopic`] for anything else.
pub fn topic(name: &str) -> Result<Topic, ApiError> {
    Topic::new(name).ok_or(ApiError::InvalidTopic)
}

/// The query parameters feedgate understands. Unknown ones are ignored, as
/// cache-busting parameters (`_=123`) must be.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    /// `after=N` (or `after=EPOCH:N`).
    pub after: Option<String>,
    /// `epoch=E`.
    pub epoch: Option<String>,
    /// `timeout=S` (long poll), seconds.
    pub timeout: Option<String>,
    /// `last_event_id=…`, for SSE clients that cannot set headers.
    pub last_event_id: Option<String>,
    /// `token=…`, for clients that cannot set `Authorization`.
    pub token: Option<String>,
    /// `topics=LIST`, a multiplexed subscription.
    pub topics: Option<String>,
    /// `encoding=json|lean` (transport/encoding.rs).
    pub encoding: Option<String>,
}

impl Query {
    /// Parses a raw (percent-encoded) query string.
    pub fn parse(raw: Option<&str>) -> Query {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let slot = match &*k {
                "after" => &mut q.after,
                "epoch" => &mut q.epoch,
                "timeout" => &mut q.timeout,
                "last_event_id" => &mut q.last_event_id,
                "token" => &mut q.token,
                "topics" => &mut q.topics,
                "encoding" => &mut q.encoding,
                _ => continue,
            };
            // The first occurrence wins; later duplicates are ignored.
            if slot.is_none() {
                *slot = Some(v.into_owned());
            }
        }
        q
    }

    /// The cursor from `after` and `epoch`; `None` for `after` means "from now".
    ///
    /// # Errors
    /// [`ApiError::InvalidCursor`] when either is malformed or they disagree.
    pub fn cursor(&self) -> Result<Cursor, ApiError> {
        let mut cursor = match &self.after {
            Some(a) => cursor_text(a)?,
            None => Cursor::default(),
        };
        if let Some(e) = &self.epoch {
            let e = parse_epoch(e)?;
            if cursor.epoch.is_some_and(|c| c != e) {
                return Err(ApiError::InvalidCursor(
                    "after and epoch name different epochs".into(),
                ));
            }
            cursor.epoch = Some(e);
        }
        Ok(cursor)
    }

    /// The long-poll hold: `timeout` seconds (fractions allowed), else
    /// `default`, never more than `max`.
    ///
    /// # Errors
    /// [`ApiError::InvalidQuery`] when `timeout` is not a non-negative number.
    pub fn timeout(&self, default: Duration, max: Duration) -> Result<Duration, ApiError> {
        let Some(t) = &self.timeout else {
            return Ok(default.min(max));
        };
        let secs: f64 = t
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| {
                ApiError::InvalidQuery(format!(
                    "timeout must be a non-negative number of seconds, got {t:?}"
                ))
            })?;
        // A number too large for a `Duration` is above any cap. (Clamping
        // in f64 first is not enough: `max.as_secs_f64()` of a very large
        // cap can round up past what `Duration` holds, and then panic.)
        Ok(Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max)))
    }
}

/// Parses a cursor as text: `N` or `EPOCH:N`. This is the SSE event id
/// format, the `after` parameter's and (quoted) the poll `ETag`'s.
///
/// # Errors
/// [`ApiError::InvalidCursor`] when it is neither.
pub fn cursor_text(text: &str) -> Result<Cursor, ApiError> {
    Ok(Cursor::parse(text)?)
}

/// Parses an `If-None-Match` header value holding one poll `ETag`
/// (`"EPOCH:N"`, optionally weak). Lists and `*` are not ours: `None`.
pub fn etag_cursor(value: &str) -> Option<Cursor> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    let c = cursor_text(inner).ok()?;
    c.epoch.is_some().then_some(c)
}

/// The cursor an `If-None-Match` header names: `Ok(None)` without one, or
/// for `*` and lists (not a single feedgate `ETag`, so not ours to read).
///
/// # Errors
/// [`ApiError::InvalidCursor`] for a single tag that is not `"EPOCH:N"`
/// (the caller decides whether that matters: only when it is the cursor).
pub fn if_none_match(
    value: Option<&hyper::header::HeaderValue>,
) -> Result<Option<Cursor>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::InvalidCursor("If-None-Match is not ASCII".into()))?
        .trim();
    if text == "*" || text.contains(',') {
        return Ok(None);
    }
    etag_cursor(text).map(Some).ok_or_else(|| {
        ApiError::InvalidCursor(format!(
            "If-None-Match {text:?} is not a poll ETag (\"EPOCH:N\")"
        ))
    })
}

/// Parses `250ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
///
/// # Errors
/// A message for clap when the text is none of those.
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 250ms, 30s, 5m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is too long a duration"))
}

/// Parses a `topics=` LIST: comma-separated `TOPIC` or `TOPIC@CURSOR`, at
/// most `max` of them, none twice. An empty text is an empty list.
///
/// # Errors
/// [`ApiError::InvalidTopic`], [`ApiError::InvalidCursor`],
/// [`ApiError::InvalidQuery`] for an empty item or a repeated topic,
/// [`ApiError::TooManyTopics`] beyond `max`.
pub fn topic_list(text: &str, max: usize) -> Result<Vec<ListItem>, ApiError> {
    Ok(crate::protocol::parse_list(text, max)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Epoch;

    #[test]
    fn malformed_text_gets_its_error_code() {
        // The parsing itself is tested in crate::protocol; here, that each
        // refusal is answered with its code.
        let code = |t: &str| topic_list(t, 3).unwrap_err().code();
        assert_eq!(code("a,a"), "invalid_query");
        assert_eq!(code("a,,b"), "invalid_query");
        assert_eq!(code("a@x"), "invalid_cursor");
        assert_eq!(code("a/b"), "invalid_topic");
        assert_eq!(code("a,b,c,d"), "too_many_topics");
        assert_eq!(cursor_text("1.5").unwrap_err().code(), "invalid_cursor");
        assert_eq!(cursor_text(" 7 ").unwrap(), Cursor::parse("7").unwrap());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("x").is_err());
        assert!(duration("5d").is_err());
        assert!(duration("-1s").is_err());
        // Too large for a Duration: an error, not a panic.
        assert!(duration("1e30").is_err());
        assert!(duration("1e300h").is_err());
    }

    #[test]
    fn topic_names() {
        assert!(topic("prices").is_ok());
        assert!(topic("a.b:c-d_e9").is_ok());
        assert!(topic(&"x".repeat(128)).is_ok());
        assert!(topic(&"x".repeat(129)).is_err());
        assert!(topic("").is_err());
        assert!(topic("a/b").is_err());
        assert!(topic("é").is_err());
        assert!(topic("a b").is_err());
    }

    #[test]
    fn query_and_its_cursor() {
        let q = Query::parse(Some("after=5&epoch=ab&_=1&after=9&last_event_id=ab%3A7"));
        assert_eq!(q.after.as_deref(), Some("5"));
        assert_eq!(q.last_event_id.as_deref(), Some("ab:7"));
        assert_eq!(q.cursor().unwrap(), Cursor::at(5, Epoch(0xab)));
        let q = Query::parse(Some("after=ab:5&epoch=cd"));
        assert!(q.cursor().is_err());
        assert_eq!(Query::parse(None).cursor().unwrap(), Cursor::default());
    }

    #[test]
    fn timeouts_are_capped() {
        let d = Duration::from_secs(30);
        let max = Duration::from_secs(60);
        assert_eq!(Query::parse(None).timeout(d, max).unwrap(), d);
        let q = Query::parse(Some("timeout=0.5"));
        assert_eq!(q.timeout(d, max).unwrap(), Duration::from_millis(500));
        let q = Query::parse(Some("timeout=1000"));
        assert_eq!(q.timeout(d, max).unwrap(), max);
        // Huge values are capped, whatever the cap (found by fuzz/query).
        let q = Query::parse(Some("timeout=1e40"));
        assert_eq!(q.timeout(d, max).unwrap(), max);
        assert_eq!(q.timeout(d, Duration::MAX).unwrap(), Duration::MAX);
        for bad in ["-1", "x", "NaN", "inf"] {
            let q = Query::parse(Some(&format!("timeout={bad}")));
            assert!(q.timeout(d, max).is_err(), "{bad}");
        }
    }

    #[test]
    fn etags() {
        assert_eq!(
            etag_cursor("\"00000000000000ff:3\""),
            Some(Cursor::at(3, Epoch(255)))
        );
        assert_eq!(
            etag_cursor("W/\"00000000000000ff:3\""),
            Some(Cursor::at(3, Epoch(255)))
        );
        assert_eq!(etag_cursor("*"), None);
        assert_eq!(etag_cursor("\"3\""), None);
    }
}
