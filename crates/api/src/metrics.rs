//! Prometheus metrics. Labels carry route patterns, never concrete paths, so no id,
//! token or personal data reaches a metric.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
    pub tokens_issued: Counter,
    pub token_rejections: Counter,
    /// Website answers recorded, by kind (`accept`, `reject`, `customise`, `form`).
    pub website_answers: Family<KindLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
    /// `true` when it repeated the visitor's last answer (nothing written).
    pub repeat: bool,
}

impl Metrics {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// Metrics with more registered by `extra` (the dispatcher's).
    pub fn with(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::with_prefix("assent");
        extra(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let tokens_issued = Counter::default();
        let token_rejections = Counter::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            duration.clone(),
        );
        registry.register(
            "access_tokens_issued",
            "Access tokens issued",
            tokens_issued.clone(),
        );
        registry.register(
            "client_authentication_failures",
            "Refused token requests",
            token_rejections.clone(),
        );
        let website_answers = Family::<KindLabels, Counter>::default();
        registry.register(
            "website_answers",
            "Answers of website visitors to the banner and consent forms",
            website_answers.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            tokens_issued,
            token_rejections,
            website_answers,
        }
    }

    pub fn website_answer(&self, kind: &str, repeat: bool) {
        self.website_answers
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
                repeat,
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
