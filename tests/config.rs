//! A configuration the server cannot run with is refused before it serves
//! anything, with a message naming the flag: by `server::run` for a
//! [`Config`] built in code, and by the binary (non-zero exit) for a flag
//! (issue 16.10). Before, such values panicked later: every connection
//! (`--header-read-timeout 1e19s`), the second publish (`--publish-rate
//! 1e-30`), the demo publisher (`--demo-rate NaN`), every SSE stream
//! (`sse_heartbeat: 0`).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use feedgate::Config;
use feedgate::ConfigError;

#[tokio::test]
async fn run_refuses_a_bad_config_before_serving() {
    let bad = [
        Config {
            sse_heartbeat: Duration::ZERO,
            ..Config::default()
        },
        Config {
            header_read_timeout: Duration::from_secs(10_000_000_000_000_000_000),
            ..Config::default()
        },
        Config {
            publish_rate: 1e-30,
            ..Config::default()
        },
        Config {
            demo: true,
            demo_rate: f64::NAN,
            ..Config::default()
        },
        Config {
            max_batch: 0,
            ..Config::default()
        },
    ];
    for config in bad {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // The shutdown future never resolves: only a refusal returns.
        let run = feedgate::run(listener, config.clone(), std::future::pending());
        let e = tokio::time::timeout(PATIENCE, run)
            .await
            .unwrap_or_else(|_| panic!("run served {config:?}"))
            .expect_err("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<ConfigError>());
        assert!(inner.is_some(), "a ConfigError: {e}");
        // (Whether the port is free afterwards is not checked: another
        // test may bind the same ephemeral port meanwhile.)
    }
}

/// Runs `feedgate serve FLAGS` and returns its exit status and stderr, or
/// fails if it is still running after [`PATIENCE`] (it started serving).
fn serve_exits(flags: &[&str]) -> (std::process::ExitStatus, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_feedgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("feedgate serve {flags:?} started instead of refusing");
        }
    }
}

#[test]
fn the_binary_refuses_out_of_range_flags_with_a_clear_message() {
    for flags in [
        &["--header-read-timeout", "10000000000000000000s"][..],
        &["--ws-ping-interval", "10000000000000000000s"],
        &["--publish-rate", "1e-30"],
        &["--demo", "--demo-rate", "NaN"],
        &["--sse-heartbeat", "0s"],
        &["--max-body", "0"],
        &["--allowed-host", "http://feeds.example/"],
    ] {
        let (status, stderr) = serve_exits(flags);
        assert!(!status.success(), "{flags:?}");
        let flag = flags.iter().rev().find(|f| f.starts_with("--")).unwrap();
        assert!(
            stderr.contains("feedgate: ") && stderr.contains(flag),
            "{flags:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }
}
