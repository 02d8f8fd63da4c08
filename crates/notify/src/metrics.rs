//! Delivery metrics. Labels are channels, statuses and skip reasons: closed sets,
//! never ids or addresses.

use assent_core::notice::NoticeChannel;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    pub channel: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Default)]
pub struct DeliveryMetrics {
    sent: Family<ChannelLabels, Counter>,
    retried: Family<ChannelLabels, Counter>,
    deferred: Family<ChannelLabels, Counter>,
    failed: Family<ChannelLabels, Counter>,
    skipped: Family<SkipLabels, Counter>,
    depth: Family<StatusLabels, Gauge>,
    /// Open rights requests past their deadline, over all tenants (no tenant label:
    /// tenant slugs would reach whoever scrapes).
    overdue_requests: Gauge,
    /// Incident deadlines passed without their notice, over all tenants.
    overdue_incident_deadlines: Gauge,
}

impl DeliveryMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the metrics to a registry (the API's, so `/metrics` shows them).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("notifications_sent", "Notices delivered", self.sent.clone());
        registry.register(
            "notifications_retried",
            "Delivery attempts that will be retried",
            self.retried.clone(),
        );
        registry.register(
            "notifications_deferred",
            "Notices put off by the channel's rate limits (no attempt used)",
            self.deferred.clone(),
        );
        registry.register(
            "notifications_failed",
            "Notices that failed for good (bounces, refused webhooks)",
            self.failed.clone(),
        );
        registry.register(
            "notifications_skipped",
            "Notices not sent because the consent gate or the channel refused",
            self.skipped.clone(),
        );
        registry.register(
            "outbox_depth",
            "Notices in the outbox by status",
            self.depth.clone(),
        );
        registry.register(
            "rights_requests_overdue",
            "Open rights requests past their legal deadline",
            self.overdue_requests.clone(),
        );
        registry.register(
            "incident_deadlines_overdue",
            "Incident deadlines (notices to the regulator) passed without their step",
            self.overdue_incident_deadlines.clone(),
        );
    }

    /// Shows the installation's backlog (read from the database by any process).
    pub fn show_backlog(&self, backlog: &assent_store::flows::backlog::Backlog) {
        for (status, n) in &backlog.outbox {
            self.set_depth(status, *n);
        }
        self.overdue_requests.set(backlog.overdue_requests);
        self.overdue_incident_deadlines
            .set(backlog.overdue_incident_deadlines);
    }

    fn channel(c: NoticeChannel) -> ChannelLabels {
        ChannelLabels {
            channel: c.as_str().to_owned(),
        }
    }

    pub fn sent(&self, c: NoticeChannel) {
        self.sent.get_or_create(&Self::channel(c)).inc();
    }
    pub fn retried(&self, c: NoticeChannel) {
        self.retried.get_or_create(&Self::channel(c)).inc();
    }
    pub fn deferred(&self, c: NoticeChannel) {
        self.deferred.get_or_create(&Self::channel(c)).inc();
    }
    pub fn failed(&self, c: NoticeChannel) {
        self.failed.get_or_create(&Self::channel(c)).inc();
    }
    pub fn skipped(&self, c: NoticeChannel, reason: &str) {
        self.skipped
            .get_or_create(&SkipLabels {
                channel: c.as_str().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }
    pub fn set_depth(&self, status: &str, n: i64) {
        self.depth
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .set(n);
    }
}
