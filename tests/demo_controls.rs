//! The `--demo` controls change what every subscriber sees, so a `POST` to
//! them passes the same checks as a publish: the origin check (no
//! cross-site simple request, issue 16.3) and the publish token. Their
//! settings are bounded in bytes per second. Without `--demo` (or `--echo`)
//! their paths are 404 for every method, `OPTIONS` included (issue 16.11).

mod common;

use common::*;
use feedgate::Config;

fn code(res: &RawResponse) -> String {
    res.json()["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn demo_controls_need_the_publish_token_and_the_origin_check() {
    let s = start(Config {
        demo: true,
        publish_token: Some("pub-s3cret".into()),
        ..Config::default()
    })
    .await;
    let host = s.addr().to_string();
    let own = format!("http://{host}");
    let body = br#"{"ws":"refuse"}"#;
    for path in ["/demo/faults", "/demo/settings"] {
        // A cross-site "simple" request (text/plain, no preflight): refused,
        // with or without the token.
        let res = http(
            s.addr(),
            "POST",
            path,
            &[
                ("origin", "http://evil.example"),
                ("content-type", "text/plain"),
                ("authorization", "Bearer pub-s3cret"),
            ],
            body,
        )
        .await;
        assert_eq!(
            (res.status, code(&res).as_str()),
            (403, "forbidden"),
            "{path}"
        );
        // No token: 401; a wrong one: 403.
        let res = http(s.addr(), "POST", path, &[], body).await;
        assert_eq!(
            (res.status, code(&res).as_str()),
            (401, "unauthorized"),
            "{path}"
        );
        let res = http(
            s.addr(),
            "POST",
            path,
            &[("authorization", "Bearer no")],
            body,
        )
        .await;
        assert_eq!(
            (res.status, code(&res).as_str()),
            (403, "forbidden"),
            "{path}"
        );
        // Reading stays open.
        assert_eq!(http(s.addr(), "GET", path, &[], b"").await.status, 200);
    }
    // Nothing changed.
    let res = http(s.addr(), "GET", "/demo/faults", &[], b"").await;
    assert_eq!(res.json()["ws"], "ok");
    // The page, same-origin and with the token, may.
    let res = http(
        s.addr(),
        "POST",
        "/demo/faults",
        &[
            ("origin", own.as_str()),
            ("host", host.as_str()),
            ("content-type", "application/json"),
            ("authorization", "Bearer pub-s3cret"),
        ],
        body,
    )
    .await;
    assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["ws"], "refuse");
}

#[tokio::test]
async fn without_a_token_the_same_origin_page_drives_the_demo() {
    let s = start(Config {
        demo: true,
        ..Config::default()
    })
    .await;
    let host = s.addr().to_string();
    let own = format!("http://{host}");
    let res = http(
        s.addr(),
        "POST",
        "/demo/settings",
        &[("origin", own.as_str()), ("host", host.as_str())],
        br#"{"rate":100,"payload":8192}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&res.body));
    let res = http(
        s.addr(),
        "POST",
        "/demo/settings",
        &[
            ("origin", "http://evil.example"),
            ("content-type", "text/plain"),
        ],
        br#"{"rate":1,"payload":0}"#,
    )
    .await;
    assert_eq!((res.status, code(&res).as_str()), (403, "forbidden"));
    // Each value in range, but 64 MiB/s together: refused.
    let res = http(
        s.addr(),
        "POST",
        "/demo/settings",
        &[],
        br#"{"rate":1000,"payload":65536}"#,
    )
    .await;
    assert_eq!((res.status, code(&res).as_str()), (400, "invalid_query"));
    let res = http(s.addr(), "GET", "/demo/settings", &[], b"").await;
    assert_eq!(
        res.json(),
        serde_json::json!({"rate": 100.0, "payload": 8192})
    );
}

#[tokio::test]
async fn preflights_of_disabled_endpoints_are_404() {
    let plain = start(Config::default()).await;
    let demo = start(Config {
        demo: true,
        echo: true,
        ..Config::default()
    })
    .await;
    for path in ["/demo/faults", "/demo/settings", "/echo"] {
        let asks = [
            ("origin", "http://test"),
            ("access-control-request-method", "POST"),
        ];
        let res = http(plain.addr(), "OPTIONS", path, &asks, b"").await;
        assert_eq!(
            (res.status, code(&res).as_str()),
            (404, "not_found"),
            "{path}"
        );
        let res = http(demo.addr(), "OPTIONS", path, &asks, b"").await;
        assert_eq!(res.status, 204, "{path} with --demo --echo");
    }
}
