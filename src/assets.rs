//! The browser assets embedded in the binary: the demo page and the
//! fallback-capable client it loads.

/// The demo page served at `/` (sources in `clients/demo/`).
pub const PAGE_HTML: &str = include_str!("../clients/demo/index.html");
/// The fallback-capable browser client served at `/feedgate.js`: the
/// bundle of `clients/js/src/` that `clients/js/scripts/build.mjs` writes
/// (checked in, so a build needs no node; `scripts/js-test.sh` fails when
/// it is stale).
pub const CLIENT_JS: &str = include_str!("../clients/js/dist/feedgate.js");

#[cfg(test)]
mod tests {
    use super::*;

    /// The `"version"` of `clients/js/package.json`.
    fn package_version() -> String {
        let package: serde_json::Value =
            serde_json::from_str(include_str!("../clients/js/package.json"))
                .expect("clients/js/package.json is JSON");
        package["version"].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn the_js_package_has_the_crates_version() {
        assert_eq!(
            package_version(),
            env!("CARGO_PKG_VERSION"),
            "clients/js/package.json's version must be Cargo.toml's"
        );
    }

    #[test]
    fn the_served_client_is_the_bundle_of_this_version() {
        let first = CLIENT_JS.lines().next().unwrap_or_default();
        let want = format!(
            "// feedgate.js {}: built from clients/js/src",
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            first.starts_with(&want),
            "clients/js/dist/feedgate.js starts {first:?}, not {want:?}: run `npm run build` in clients/js"
        );
        assert!(CLIENT_JS.contains("FeedgateSocket extends EventTarget"));
        assert!(CLIENT_JS.contains("export {"));
    }
}
