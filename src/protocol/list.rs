//! The LIST of a multiplexed subscription (`topics=`, a poll's `next`, an
//! SSE LIST id): comma-separated items `TOPIC` (from now) or
//! `TOPIC@CURSOR`. `,` and `@` are not in the topic alphabet, so a LIST
//! needs no escaping of its own.

use std::fmt::Write;

use super::{Cursor, Epoch, Malformed, Topic};

/// One item of a LIST: a topic and, after `@`, its cursor (`None`: from
/// now).
pub type ListItem = (Topic, Option<Cursor>);

/// Parses a LIST: at most `max` items, none twice. An empty text is an
/// empty list.
///
/// # Errors
/// [`Malformed::Topic`], [`Malformed::Cursor`], [`Malformed::List`] for an
/// empty item or a repeated topic, [`Malformed::TooManyTopics`] beyond
/// `max`.
pub fn parse_list(text: &str, max: usize) -> Result<Vec<ListItem>, Malformed> {
    let mut items: Vec<ListItem> = Vec::new();
    if text.is_empty() {
        return Ok(items);
    }
    for (i, item) in text.split(',').enumerate() {
        if i >= max {
            return Err(Malformed::TooManyTopics(max));
        }
        let (name, cursor) = match item.split_once('@') {
            Some((name, c)) => (name, Some(Cursor::parse(c)?)),
            None => (item, None),
        };
        if name.is_empty() {
            return Err(Malformed::List(format!(
                "topics: item {} is empty; expected TOPIC or TOPIC@CURSOR",
                i + 1
            )));
        }
        let topic = Topic::new(name).ok_or(Malformed::Topic)?;
        if items.iter().any(|(t, _)| *t == topic) {
            return Err(Malformed::List(format!("topics: {topic} is listed twice")));
        }
        items.push((topic, cursor));
    }
    Ok(items)
}

/// Appends one item, `TOPIC`, `TOPIC@N` or `TOPIC@EPOCH:N` as `cursor`
/// says, with a `,` before it unless `out` is empty.
pub fn push_item(out: &mut String, topic: &str, cursor: &Cursor) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(topic);
    let _ = match (cursor.after, cursor.epoch) {
        (Some(n), Some(e)) => write!(out, "@{e}:{n}"),
        (Some(n), None) => write!(out, "@{n}"),
        (None, _) => Ok(()),
    };
}

/// Appends one item `TOPIC@EPOCH:N` (or `TOPIC@N` when the epoch is left
/// out), the inverse of one item of [`parse_list`].
pub fn list_item(out: &mut String, topic: &Topic, epoch: Option<Epoch>, seq: u64) {
    let cursor = Cursor {
        after: Some(seq),
        epoch,
    };
    push_item(out, topic.as_str(), &cursor);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_format() {
        let l = parse_list("a,b@5,c@00000000000000ff:3,d@0", 10).unwrap();
        let names: Vec<&str> = l.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(l[0].1, None);
        assert_eq!(l[1].1.unwrap().after, Some(5));
        assert_eq!(l[2].1, Some(Cursor::at(3, Epoch(255))));
        assert!(parse_list("", 10).unwrap().is_empty());
        let bad = |t: &str| parse_list(t, 3).unwrap_err();
        assert!(matches!(bad("a,a"), Malformed::List(_)));
        assert!(matches!(bad("a,,b"), Malformed::List(_)));
        assert!(matches!(bad("a@"), Malformed::Cursor(_)));
        assert!(matches!(bad("a@x"), Malformed::Cursor(_)));
        assert_eq!(bad("a/b"), Malformed::Topic);
        assert_eq!(bad("a,b,c,d"), Malformed::TooManyTopics(3));
        let mut out = String::new();
        list_item(&mut out, &l[0].0, Some(Epoch(255)), 7);
        list_item(&mut out, &l[1].0, None, 5);
        push_item(&mut out, "e", &Cursor::default());
        assert_eq!(out, "a@00000000000000ff:7,b@5,e");
        let again = parse_list(&out, 3).unwrap();
        assert_eq!(again[0].1, Some(Cursor::at(7, Epoch(255))));
        assert_eq!(again[2].1, None);
    }
}
