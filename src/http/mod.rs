//! HTTP helpers every endpoint shares: the response body type and JSON
//! answers, gzip for poll answers, reading a request body within its
//! limits, and the headers of an event stream.
//!
//! - [`response`]: the body type, JSON and error responses, `MeteredBody`;
//! - [`gzip`]: `Accept-Encoding` and gzip for poll and long-poll answers;
//! - [`body`]: a request body read within its size and time limits;
//! - [`event_stream`]: the response headers of an SSE stream;
//! - [`chunk`]: HTTP/1.1 chunked framing, for bodies feedgate writes itself;
//! - [`head`]: HTTP/1.1 response heads, for answers feedgate writes itself.

pub(crate) mod body;
pub(crate) mod chunk;
pub(crate) mod event_stream;
pub(crate) mod gzip;
pub(crate) mod head;
pub(crate) mod response;
