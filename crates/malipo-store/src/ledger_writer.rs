//! Group commit for the ledger: many callers posting one transfer each
//! share commits.

use std::sync::Arc;

use malipo_core::Clock;
use malipo_ledger::NewTransfer;

use crate::batcher::{Batcher, WriteError};
use crate::{PostResult, Store};

/// Transfers one commit may carry.
pub const BATCH_TRANSFERS_MAX: usize = 4_096;
/// Transfers that may wait for the writer before submitters are slowed down.
const QUEUE_TRANSFERS_MAX: usize = 32_768;

#[derive(Clone)]
pub struct LedgerWriter {
    batcher: Batcher<NewTransfer, PostResult>,
}

impl LedgerWriter {
    pub fn spawn(store: Store, clock: Arc<dyn Clock>) -> Self {
        let batcher = Batcher::spawn(
            "ledger",
            BATCH_TRANSFERS_MAX,
            QUEUE_TRANSFERS_MAX,
            move |transfers| {
                let (store, now) = (store.clone(), clock.now());
                async move { store.post_transfers(&transfers, now).await }
            },
        );
        Self { batcher }
    }

    /// Posts `transfer` with whatever else is waiting, and returns its result.
    pub async fn post(&self, transfer: NewTransfer) -> Result<PostResult, WriteError> {
        self.batcher.submit(transfer).await
    }
}
