//! Prometheus metrics: what the relay counts, and the small HTTP endpoint that serves
//! them (`GET /metrics`, OpenMetrics text) on a local address.
//!
//! Counts only: request kinds, outcomes, sizes. Never usernames or content.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    /// `Request::kind()`.
    pub(super) kind: &'static str,
    /// "ok" or the error code.
    pub(super) outcome: String,
}

/// Everything the relay counts.
pub(super) struct Metrics {
    registry: Registry,
    pub(super) connections: Gauge,
    pub(super) users_online: Gauge,
    pub(super) requests: Family<RequestLabels, Counter>,
    pub(super) messages_queued: Counter,
    pub(super) message_bytes_queued: Counter,
    pub(super) group_messages_queued: Counter,
    pub(super) group_deliveries_queued: Counter,
    pub(super) group_deliveries_skipped: Counter,
    pub(super) files_uploaded: Counter,
    pub(super) file_bytes_received: Counter,
    pub(super) file_bytes_sent: Counter,
    pub(super) events_pushed: Counter,
    pub(super) store_commits: Counter,
    pub(super) store_batched_writes: Counter,
    pub(super) ephemeral_events_pushed: Counter,
    pub(super) announcements_dropped: Counter,
    pub(super) failed_logins: Counter,
    pub(super) calls_placed: Counter,
    pub(super) voice_datagrams_forwarded: Counter,
    pub(super) voice_datagrams_dropped: Counter,
}

impl Metrics {
    pub(super) fn new() -> Self {
        let mut registry = Registry::with_prefix("uchat");
        let connections = Gauge::default();
        let users_online = Gauge::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let messages_queued = Counter::default();
        let message_bytes_queued = Counter::default();
        let group_messages_queued = Counter::default();
        let group_deliveries_queued = Counter::default();
        let group_deliveries_skipped = Counter::default();
        let files_uploaded = Counter::default();
        let file_bytes_received = Counter::default();
        let file_bytes_sent = Counter::default();
        let events_pushed = Counter::default();
        let store_commits = Counter::default();
        let store_batched_writes = Counter::default();
        let ephemeral_events_pushed = Counter::default();
        let announcements_dropped = Counter::default();
        let failed_logins = Counter::default();
        let calls_placed = Counter::default();
        let voice_datagrams_forwarded = Counter::default();
        let voice_datagrams_dropped = Counter::default();
        registry.register(
            "store_commits",
            "Durable transactions that committed gathered messages, group messages and acknowledgements",
            store_commits.clone(),
        );
        registry.register(
            "store_batched_writes",
            "Messages, group messages and acknowledgements committed by those transactions",
            store_batched_writes.clone(),
        );
        registry.register(
            "calls_placed",
            "Calls that rang (invitations answered with ringing)",
            calls_placed.clone(),
        );
        registry.register(
            "voice_datagrams_forwarded",
            "Voice datagrams forwarded from one leg of a call to the other",
            voice_datagrams_forwarded.clone(),
        );
        registry.register(
            "voice_datagrams_dropped",
            "Voice datagrams dropped: no connected call for their handle, or the other leg could not take them",
            voice_datagrams_dropped.clone(),
        );
        registry.register("connections", "Open QUIC connections", connections.clone());
        registry.register(
            "users_online",
            "Users with at least one connection",
            users_online.clone(),
        );
        registry.register(
            "requests",
            "Requests answered, by kind and outcome",
            requests.clone(),
        );
        registry.register(
            "messages_queued",
            "Messages committed to a recipient's queue",
            messages_queued.clone(),
        );
        registry.register(
            "message_bytes_queued",
            "Ciphertext bytes committed to recipients' queues",
            message_bytes_queued.clone(),
        );
        registry.register(
            "group_messages_queued",
            "Group messages stored (once each) for their members",
            group_messages_queued.clone(),
        );
        registry.register(
            "group_deliveries_queued",
            "Group messages committed to members' queues (one per recipient)",
            group_deliveries_queued.clone(),
        );
        registry.register(
            "group_deliveries_skipped",
            "Group messages not queued for a member whose queue was full",
            group_deliveries_skipped.clone(),
        );
        registry.register(
            "files_uploaded",
            "Files whose upload completed",
            files_uploaded.clone(),
        );
        registry.register(
            "file_bytes_received",
            "Ciphertext bytes of files received from uploaders",
            file_bytes_received.clone(),
        );
        registry.register(
            "file_bytes_sent",
            "Ciphertext bytes of files sent to downloaders",
            file_bytes_sent.clone(),
        );
        registry.register(
            "events_pushed",
            "Queued events written to peers' event streams",
            events_pushed.clone(),
        );
        registry.register(
            "ephemeral_events_pushed",
            "Presence, profile and identity changes handed to online friends' pushers",
            ephemeral_events_pushed.clone(),
        );
        registry.register(
            "announcements_dropped",
            "Presence, profile and identity changes dropped because the announcement queue was full",
            announcements_dropped.clone(),
        );
        registry.register(
            "failed_logins",
            "Logins refused for a wrong password or unknown user",
            failed_logins.clone(),
        );
        Self {
            registry,
            connections,
            users_online,
            requests,
            messages_queued,
            message_bytes_queued,
            group_messages_queued,
            group_deliveries_queued,
            group_deliveries_skipped,
            files_uploaded,
            file_bytes_received,
            file_bytes_sent,
            events_pushed,
            store_commits,
            store_batched_writes,
            ephemeral_events_pushed,
            announcements_dropped,
            failed_logins,
            calls_placed,
            voice_datagrams_forwarded,
            voice_datagrams_dropped,
        }
    }

    /// The current values in the OpenMetrics text format.
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Binds `addr` and serves `GET /metrics` until `stop` turns true.
pub(super) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                // Priority: stopping first.
                biased;
                _ = stop.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let metrics = metrics.clone();
                            async move { Ok::<_, std::convert::Infallible>(answer(&metrics, &request)) }
                        });
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                }
            }
        }
    });
    Ok((local, task))
}

fn answer<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if request.uri().path() == "/metrics" {
        (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics\n".to_string(),
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_openmetrics_text_format() {
        let metrics = Metrics::new();
        metrics.messages_queued.inc();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                kind: "send",
                outcome: "ok".into(),
            })
            .inc();
        let text = metrics.render();
        assert!(text.contains("uchat_messages_queued_total 1"), "{text}");
        assert!(
            text.contains(r#"uchat_requests_total{kind="send",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
