//! Why a piece of protocol text — a topic name, a cursor, a LIST — was
//! refused. The server maps each kind to its HTTP error (`crate::params`);
//! a client shows it as it is.

/// Protocol text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// A topic name outside `[A-Za-z0-9_.:-]{1,128}`.
    #[error("invalid topic name: it must be 1 to 128 characters of A-Z a-z 0-9 _ . : -")]
    Topic,
    /// A cursor that is neither `N` nor `EPOCH:N`.
    #[error("invalid cursor: {0}")]
    Cursor(String),
    /// A LIST with an empty item or a topic named twice.
    #[error("invalid query parameter: {0}")]
    List(String),
    /// A LIST of more topics than allowed.
    #[error("too many topics for one subscription: the limit is {0}")]
    TooManyTopics(usize),
}
