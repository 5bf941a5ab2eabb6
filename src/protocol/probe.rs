//! The limits and header of the path probe (`/probe/…`,
//! docs/protocol.md "Path probe") that `feedgate doctor` and the server
//! must agree on.

use std::time::Duration;

/// Most timed events per stream probe.
pub const MAX_COUNT: u32 = 20;
/// Longest silence of a stream probe, and longest long-poll probe hold.
pub const MAX_IDLE: Duration = Duration::from_secs(300);
/// Most padding bytes per message.
pub const MAX_PAD: usize = 4096;
/// The header naming the uncompressed length of a poll probe's body.
pub const BYTES_HEADER: &str = "x-feedgate-probe-bytes";
