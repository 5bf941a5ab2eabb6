//! Publishing one event: `POST /topics/{t}/events` on a connection of its
//! own, answered `201 {"topic":…,"seq":N,"epoch":…}`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::error::protocol;
use super::{ClientError, Endpoint, HttpConn};
use crate::wire::ByteCount;

/// Publishes one JSON value; returns the acknowledged seq.
///
/// # Errors
/// [`ClientError::Status`] with the server's JSON error for a 4xx/5xx.
pub async fn publish(
    ep: &Endpoint,
    topic: &str,
    json: impl Into<Bytes>,
) -> Result<u64, ClientError> {
    let bytes = Arc::new(ByteCount::default());
    let mut http = HttpConn::connect(ep, bytes).await?;
    let (status, body) = http
        .request(
            Method::POST,
            &ep.path(&format!("topics/{topic}/events")),
            Some(json.into()),
        )
        .await?;
    if status != StatusCode::CREATED {
        return Err(ClientError::status(status, &body));
    }
    #[derive(Deserialize)]
    struct Ack {
        seq: u64,
    }
    let ack: Ack = serde_json::from_slice(&body).map_err(protocol)?;
    Ok(ack.seq)
}
