//! The browser assets embedded in the binary: the demo page and the
//! fallback-capable client it loads.

/// The demo page served at `/` (sources in `clients/demo/`).
pub const PAGE_HTML: &str = include_str!("../clients/demo/index.html");
/// The fallback-capable browser client served at `/feedgate.js`.
pub const CLIENT_JS: &str = include_str!("../clients/js/feedgate.js");
