//! Group commit for the ledger: callers submit transfers one at a time; a
//! single task drains whatever has queued up and posts it as one batch in
//! one transaction. Under load many transfers share one commit (one fsync
//! on SQLite with `synchronous=FULL`); when idle a lone transfer goes at once.

use std::sync::Arc;

use malipo_core::Clock;
use malipo_ledger::NewTransfer;
use tokio::sync::{mpsc, oneshot};

use crate::{PostResult, Store, StoreError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the batch holding this transfer could not be written")]
    Batch(#[source] Arc<StoreError>),
    #[error("the ledger writer has stopped")]
    Stopped,
}

struct Job {
    transfer: NewTransfer,
    reply: oneshot::Sender<Result<PostResult, WriteError>>,
}

/// A handle to the writer task; cheap to clone. The task ends when every
/// handle is dropped.
#[derive(Clone)]
pub struct LedgerWriter {
    sender: mpsc::Sender<Job>,
}

/// Transfers one commit may carry.
pub const BATCH_TRANSFERS_MAX: usize = 4_096;
/// Transfers that may wait for the writer before submitters are slowed down.
const QUEUE_TRANSFERS_MAX: usize = 32_768;

impl LedgerWriter {
    pub fn spawn(store: Store, clock: Arc<dyn Clock>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_TRANSFERS_MAX);
        tokio::spawn(run(store, clock, receiver));
        Self { sender }
    }

    /// Posts `transfer` with whatever else is waiting, and returns its result.
    pub async fn post(&self, transfer: NewTransfer) -> Result<PostResult, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Job { transfer, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

async fn run(store: Store, clock: Arc<dyn Clock>, mut receiver: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(BATCH_TRANSFERS_MAX);
    while receiver.recv_many(&mut jobs, BATCH_TRANSFERS_MAX).await > 0 {
        let (transfers, replies): (Vec<NewTransfer>, Vec<_>) =
            jobs.drain(..).map(|job| (job.transfer, job.reply)).unzip();
        match store.post_transfers(&transfers, clock.now()).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A submitter that gave up waiting is no reason to stop.
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) => {
                tracing::error!(error = %error, transfers = transfers.len(), "ledger batch failed");
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(WriteError::Batch(error.clone())));
                }
            }
        }
    }
}
