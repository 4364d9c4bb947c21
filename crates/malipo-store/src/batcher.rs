//! Group commit: callers submit one item each; one task drains whatever has
//! queued up and writes it as one batch in one transaction. Under load many
//! items share a commit (one fsync on SQLite with `synchronous=FULL`); when
//! idle a lone item goes at once, with no added wait.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the batch holding this item could not be written")]
    Batch(#[source] Arc<StoreError>),
    #[error("the writer has stopped")]
    Stopped,
}

type Reply<O> = oneshot::Sender<Result<O, WriteError>>;

/// A handle to a batching writer task; cheap to clone. The task ends when
/// every handle is dropped.
pub struct Batcher<I, O> {
    sender: mpsc::Sender<(I, Reply<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// `write` gets a batch of at most `batch_max` items and returns one
    /// output per item, in order.
    pub fn spawn<F, Fut>(name: &'static str, batch_max: usize, queue_max: usize, write: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send,
    {
        let (sender, mut receiver) = mpsc::channel::<(I, Reply<O>)>(queue_max);
        tokio::spawn(async move {
            let mut queued = Vec::with_capacity(batch_max);
            while receiver.recv_many(&mut queued, batch_max).await > 0 {
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = queued.drain(..).unzip();
                let count = items.len();
                match write(items).await {
                    Ok(outputs) => {
                        assert_eq!(outputs.len(), count, "{name}: one output per item");
                        for (reply, output) in replies.into_iter().zip(outputs) {
                            // A caller that stopped waiting is no reason to stop.
                            let _ = reply.send(Ok(output));
                        }
                    }
                    Err(error) => {
                        tracing::error!(writer = name, error = %error, items = count, "batch failed");
                        let error = Arc::new(error);
                        for reply in replies {
                            let _ = reply.send(Err(WriteError::Batch(error.clone())));
                        }
                    }
                }
            }
        });
        Self { sender }
    }

    /// Writes `item` with whatever else is waiting, and returns its output.
    pub async fn submit(&self, item: I) -> Result<O, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((item, reply))
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}
