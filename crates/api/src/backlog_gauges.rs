//! The backlog gauges (`assent_outbox_depth`, `assent_rights_requests_overdue`) as
//! every process's `/metrics` shows them: read from the database when scraped, at
//! most every few seconds, so an API-only process reports what the workers see.

use assent_notify::metrics::DeliveryMetrics;
use assent_store::Store;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old the gauges may be when scraped.
const FRESH_FOR: Duration = Duration::from_secs(5);

pub struct BacklogGauges {
    metrics: Arc<DeliveryMetrics>,
    /// When the gauges were last read; `None` before the first scrape.
    read_at: Mutex<Option<Instant>>,
}

impl BacklogGauges {
    pub fn new(metrics: Arc<DeliveryMetrics>) -> Self {
        Self {
            metrics,
            read_at: Mutex::new(None),
        }
    }

    /// Reads the backlog again when the gauges are older than [`FRESH_FOR`]. Of
    /// scrapes arriving together, one reads; the others show what is there. A
    /// failed read leaves the last values (and is logged).
    pub async fn refresh(&self, store: &Store) {
        {
            let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
            if read_at.is_some_and(|t| t.elapsed() < FRESH_FOR) {
                return;
            }
            *read_at = Some(Instant::now());
        }
        let store = store.clone();
        let read = actix_web::web::block(move || {
            assent_store::flows::backlog::read(&store, chrono::Utc::now().naive_utc())
        })
        .await;
        match read {
            Ok(Ok(backlog)) => self.metrics.show_backlog(&backlog),
            Ok(Err(error)) => tracing::warn!(%error, "reading the backlog for /metrics failed"),
            Err(error) => tracing::warn!(%error, "reading the backlog for /metrics failed"),
        }
    }
}
