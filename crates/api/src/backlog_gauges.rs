//! The backlog gauges (`assent_outbox_depth`, `assent_rights_requests_overdue`) as
//! every process's `/metrics` shows them: read from the database when scraped, at
//! most every few seconds, so an API-only process reports what the workers see.

use assent_notify::metrics::DeliveryMetrics;
use assent_store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old the gauges may be when scraped.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// How long a scrape waits for a read it started; past that it answers with the
/// last values, and the read still updates them when it ends.
const WAIT_AT_MOST: Duration = Duration::from_secs(2);

pub struct BacklogGauges {
    metrics: Arc<DeliveryMetrics>,
    /// When the gauges were last read; `None` before the first scrape.
    read_at: Mutex<Option<Instant>>,
    /// A read is under way: others do not start one (a slow database is not asked
    /// twice, and an older read cannot overwrite a newer).
    reading: Arc<AtomicBool>,
}

impl BacklogGauges {
    pub fn new(metrics: Arc<DeliveryMetrics>) -> Self {
        Self {
            metrics,
            read_at: Mutex::new(None),
            reading: Arc::default(),
        }
    }

    /// Reads the backlog again when the gauges are older than [`FRESH_FOR`] and no
    /// read is under way, waiting for it at most [`WAIT_AT_MOST`]. A failed read
    /// leaves the last values (and is logged).
    pub async fn refresh(&self, store: &Store) {
        {
            let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
            if read_at.is_some_and(|t| t.elapsed() < FRESH_FOR) {
                return;
            }
            if self.reading.swap(true, Ordering::AcqRel) {
                return;
            }
            *read_at = Some(Instant::now());
        }
        let (store, metrics, reading) = (store.clone(), self.metrics.clone(), self.reading.clone());
        let read = actix_web::rt::spawn(async move {
            let backlog = actix_web::web::block(move || {
                assent_store::flows::backlog::read(&store, chrono::Utc::now().naive_utc())
            })
            .await;
            match backlog {
                Ok(Ok(backlog)) => metrics.show_backlog(&backlog),
                Ok(Err(error)) => tracing::warn!(%error, "reading the backlog for /metrics failed"),
                Err(error) => tracing::warn!(%error, "reading the backlog for /metrics failed"),
            }
            reading.store(false, Ordering::Release);
        });
        let _ = tokio::time::timeout(WAIT_AT_MOST, read).await;
    }
}
