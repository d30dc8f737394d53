//! Prometheus metrics: request counts and latencies by route template and
//! status. Each server owns its registry (no global state), so several
//! servers in one test process do not mix their numbers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::AppState;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    /// A fresh registry with the HTTP metrics registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("shuyu".into()), None)?;
        let labels = ["method", "route", "status"];
        let requests = IntCounterVec::new(Opts::new("http_requests_total", "HTTP requests served"), &labels)?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &labels,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
        })
    }

    /// Records one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

/// The route template a request matched, carried out to [`track`] (which
/// runs outside the router, where the matched path is not yet known).
#[derive(Debug, Clone)]
pub struct RouteTag(pub String);

/// Route-layer middleware: tags the response with the matched route template.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let tag = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| RouteTag(m.as_str().to_string()));
    let mut res = next.run(req).await;
    if let Some(tag) = tag {
        res.extensions_mut().insert(tag);
    }
    res
}

/// Middleware: times every request and records it under its route template
/// (`/api/v1/users/{id}`, never the concrete path, to keep label cardinality bounded).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<RouteTag>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| "unmatched".into());
    state
        .metrics
        .observe(&method, &route, res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

/// `GET /metrics` body.
pub fn exposition(state: &AppState) -> Response {
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
