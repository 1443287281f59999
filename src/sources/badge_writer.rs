//! The one task that changes badge values. Every `PUT`/`POST`/`DELETE` is
//! queued here and answered when its change is durable and published. The
//! request only waits for the answer: a client that goes away cannot cancel
//! a change half-way, reorder it against the next one, or lose it once it
//! was taken. Changes apply strictly in queue order; at shutdown the queue
//! is drained before the task ends.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::badge_state::{BadgeState, BadgeUpdate};
use super::badges::{Badges, WriteError};
use super::tasks::Tasks;
use crate::panics;

/// Changes waiting at most; beyond it a write gets `Unavailable` (503).
const QUEUE: usize = 4096;

pub(super) enum Op {
    Write(String, Box<BadgeUpdate>),
    Delete(String),
}

pub(super) enum Done {
    Written(Arc<BadgeState>),
    Deleted(bool),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Done, WriteError>>,
}

pub(super) struct WriterQueue {
    jobs: mpsc::Sender<Job>,
    /// Taken by the writer task when it starts.
    inbox: Mutex<Option<mpsc::Receiver<Job>>>,
}

impl WriterQueue {
    pub(super) fn new() -> WriterQueue {
        let (jobs, inbox) = mpsc::channel(QUEUE);
        WriterQueue { jobs, inbox: Mutex::new(Some(inbox)) }
    }

    async fn submit(&self, op: Op) -> Result<Done, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send(Job { op, reply }).map_err(|_| WriteError::Unavailable)?;
        // The writer answers every job it took; no answer means it stopped.
        answer.await.map_err(|_| WriteError::Unavailable)?
    }
}

impl Badges {
    /// Starts the writer task (once; later calls do nothing).
    pub fn start_writer(self: &Arc<Self>, tasks: &Tasks) {
        let Some(inbox) = self.writer.inbox.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        tasks.tracker.spawn(run(self.clone(), inbox, tasks.clone()));
    }

    /// Applies, persists, then publishes a write; returns the new state.
    pub async fn write(&self, name: &str, update: BadgeUpdate) -> Result<Arc<BadgeState>, WriteError> {
        match self.writer.submit(Op::Write(name.to_string(), Box::new(update))).await? {
            Done::Written(state) => Ok(state),
            Done::Deleted(_) => unreachable!("a write is answered as written"),
        }
    }

    /// Removes a badge's value; `false` if it had none.
    pub async fn delete(&self, name: &str) -> Result<bool, WriteError> {
        match self.writer.submit(Op::Delete(name.to_string())).await? {
            Done::Deleted(existed) => Ok(existed),
            Done::Written(_) => unreachable!("a delete is answered as deleted"),
        }
    }
}

async fn run(badges: Arc<Badges>, mut inbox: mpsc::Receiver<Job>, tasks: Tasks) {
    loop {
        let job = tokio::select! {
            biased;
            job = inbox.recv() => job,
            _ = tasks.shutdown.cancelled() => None,
        };
        let Some(job) = job else { break };
        apply(&badges, job).await;
    }
    // Shutting down: take nothing new, finish everything already taken.
    inbox.close();
    while let Some(job) = inbox.recv().await {
        apply(&badges, job).await;
    }
}

async fn apply(badges: &Badges, job: Job) {
    let change = async {
        match job.op {
            Op::Write(name, update) => badges.apply_write(&name, *update).await.map(Done::Written),
            Op::Delete(name) => badges.apply_delete(&name).await.map(Done::Deleted),
        }
    };
    let result = panics::catch("badge_writer", "a badge write", change).await.unwrap_or(Err(WriteError::Panicked));
    // The client may have gone: the change stands all the same.
    let _ = job.reply.send(result);
}
