use crate::metrics::Metrics;
use assent_core::access_token::AccessTokens;
use assent_store::{Store, StoreResult};
use std::sync::Arc;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<AccessTokens>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(store: Store, tokens: AccessTokens) -> Self {
        Self {
            store,
            tokens: Arc::new(tokens),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Runs blocking database work on the blocking pool, never on an async worker.
    pub async fn db<T, F>(&self, f: F) -> crate::ApiResult<T>
    where
        F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        Ok(actix_web::web::block(move || f(&store)).await??)
    }
}
