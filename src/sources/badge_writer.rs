//! The one task that changes badge values, with group commit. Every
//! `PUT`/`POST`/`DELETE` is queued here; the writer takes every change
//! waiting when it starts a batch, applies them in queue order to the
//! values in memory (a later write to a badge sees the earlier one), stores
//! the batch as one transaction (one fsync), and only then publishes the new
//! values and answers each request. A store failure answers every change
//! in the batch with the error and changes nothing, in memory or on disk.
//!
//! The request only waits for its answer: a client that goes away cannot
//! cancel a change half-way, reorder it, or lose it once it was taken. At
//! shutdown the queue is drained before the task ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use super::badge_state::{BadgeState, BadgeUpdate};
use super::badges::{Badges, WriteError};
use super::tasks::Tasks;
use crate::metrics::metrics;
use crate::panics;
use crate::store::{Change, Store, StoreError};

/// Changes waiting at most; beyond it a write gets `Unavailable` (503).
const QUEUE: usize = 4096;
/// Changes in one transaction at most (bounds its memory and latency).
const MAX_BATCH: usize = 1024;
/// Times a batch is planned again after another instance wrote first.
const MAX_CONFLICTS: usize = 8;

#[derive(Clone)]
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

type SharedStore = Arc<Mutex<Box<dyn Store>>>;
/// What the writer task takes when it starts: its queue and the store.
type Start = (mpsc::Receiver<Job>, Box<dyn Store>);

pub(super) struct WriterQueue {
    jobs: mpsc::Sender<Job>,
    /// Taken by the writer task when it starts.
    start: Mutex<Option<Start>>,
}

impl WriterQueue {
    pub(super) fn new(store: Box<dyn Store>) -> WriterQueue {
        let (jobs, inbox) = mpsc::channel(QUEUE);
        WriterQueue { jobs, start: Mutex::new(Some((inbox, store))) }
    }

    async fn submit(&self, op: Op) -> Result<Done, WriteError> {
        let done = async {
            let (reply, answer) = oneshot::channel();
            self.jobs.try_send(Job { op, reply }).map_err(|_| WriteError::Unavailable)?;
            // The writer answers every job it took; no answer means it stopped.
            answer.await.map_err(|_| WriteError::Unavailable)?
        };
        let result = done.await;
        if let Err(e) = &result {
            let reason = crate::metrics::Reason { reason: e.reason() };
            crate::metrics::metrics().store_write_failures.get_or_create(&reason).inc();
        }
        result
    }
}

impl Badges {
    /// Starts the writer task (once; later calls do nothing).
    pub fn start_writer(self: &Arc<Self>, tasks: &Tasks) {
        let Some((inbox, store)) = self.writer.start.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        tasks.tracker.spawn(run(self.clone(), inbox, Arc::new(Mutex::new(store)), tasks.clone()));
    }

    /// Applies, stores, then publishes a write; returns the new state.
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

async fn run(badges: Arc<Badges>, mut inbox: mpsc::Receiver<Job>, store: SharedStore, tasks: Tasks) {
    loop {
        let first = tokio::select! {
            biased;
            job = inbox.recv() => job,
            _ = tasks.shutdown.cancelled() => None,
        };
        let Some(first) = first else { break };
        let batch = take_waiting(first, &mut inbox);
        commit(&badges, &store, batch).await;
    }
    // Shutting down: take nothing new, finish everything already taken.
    inbox.close();
    while let Some(first) = inbox.recv().await {
        let batch = take_waiting(first, &mut inbox);
        commit(&badges, &store, batch).await;
    }
}

/// `first` and every job already waiting behind it, up to `MAX_BATCH`.
fn take_waiting(first: Job, inbox: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match inbox.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// One batch: plan every change in memory, store them as one transaction,
/// then publish and answer. With a shared store another instance may have
/// written first: then its values are taken and the batch planned again.
async fn commit(badges: &Badges, store: &SharedStore, batch: Vec<Job>) {
    let (jobs, ops): (Vec<_>, Vec<_>) = batch.into_iter().map(|job| (job.reply, job.op)).unzip();
    let mut attempt = 0;
    let (outcomes, stored, finals) = loop {
        attempt += 1;
        let ops = ops.clone();
        let planned =
            panics::catch("badge_writer", "planning a batch of badge writes", async { plan(badges, ops) }).await;
        let Ok((outcomes, changes, finals)) = planned else {
            for reply in jobs {
                let _ = reply.send(Err(WriteError::Panicked));
            }
            return;
        };
        match store_batch(store, changes).await {
            Err(Some(StoreError::Conflict(current))) if attempt < MAX_CONFLICTS => {
                for (name, state) in current {
                    badges.show_remote(&name, state);
                }
            }
            stored => break (outcomes, stored, finals),
        }
    };
    match stored {
        Ok(versions) => {
            let mut finals = finals;
            // Each badge shows the version its last change was stored at.
            for (name, version) in versions {
                if let Some(Some(state)) = finals.get_mut(&name) {
                    *state = Arc::new(BadgeState { version, ..(**state).clone() });
                }
            }
            for (name, state) in finals {
                badges.publish(&name, state);
            }
            for (reply, outcome) in jobs.into_iter().zip(outcomes) {
                // The client may have gone: the change stands all the same.
                let _ = reply.send(outcome.map(|(done, _)| done));
            }
        }
        Err(error) => {
            if let Some(error) = &error {
                tracing::error!(%error, "could not store badge values; nothing was changed");
            }
            for (reply, outcome) in jobs.into_iter().zip(outcomes) {
                let answer = match outcome {
                    // Changes that needed the store failed with it.
                    Ok((_, true)) => Err(match &error {
                        Some(e) => WriteError::Storage(e.clone()),
                        None => WriteError::Panicked,
                    }),
                    // Answers that changed nothing stand (a refusal, a no-op).
                    other => other.map(|(done, _)| done),
                };
                let _ = reply.send(answer);
            }
        }
    }
}

/// Stores `changes` as one unit, off the async threads (a commit waits for
/// the disk or the network). `Err(None)`: the store panicked.
async fn store_batch(store: &SharedStore, changes: Vec<Change>) -> Result<Vec<(String, u64)>, Option<StoreError>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Put { name, .. } | Change::Delete { name, .. } => name.clone(),
        })
        .collect();
    let store = store.clone();
    let size = changes.len();
    let started = std::time::Instant::now();
    let apply = move || store.lock().unwrap_or_else(|e| e.into_inner()).apply(&changes);
    match tokio::task::spawn_blocking(apply).await {
        Ok(Ok(versions)) => {
            metrics().store_commits.inc();
            metrics().store_batch_changes.observe(size as f64);
            metrics().store_commit_seconds.observe(started.elapsed().as_secs_f64());
            Ok(names.into_iter().zip(versions).collect())
        }
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

/// Per job: its answer and whether it changed anything.
type Outcome = Result<(Done, bool), WriteError>;

/// Applies `ops` in order to the current values, without publishing:
/// the answers, the changes to store, and each touched badge's final state.
#[allow(clippy::type_complexity)]
fn plan(badges: &Badges, ops: Vec<Op>) -> (Vec<Outcome>, Vec<Change>, HashMap<String, Option<Arc<BadgeState>>>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut finals: HashMap<String, Option<Arc<BadgeState>>> = HashMap::new();
    let mut count = badges.count();
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut changes = Vec::new();
    for op in ops {
        let outcome = match op {
            Op::Write(name, update) => {
                let old = finals.get(&name).cloned().unwrap_or_else(|| badges.get(&name));
                if old.is_none() && !badges.may_create(&name, count) {
                    Err(WriteError::TooManyBadges)
                } else {
                    if old.is_none() {
                        count += 1;
                    }
                    let appended = update.appends();
                    let new = Arc::new(update.apply(old.as_deref(), badges.history_len(), now));
                    changes.push(Change::Put { name: name.clone(), state: (*new).clone(), appended });
                    finals.insert(name, Some(new.clone()));
                    Ok((Done::Written(new), true))
                }
            }
            Op::Delete(name) => {
                let old = finals.get(&name).cloned().unwrap_or_else(|| badges.get(&name));
                if old.is_none() {
                    Ok((Done::Deleted(false), false))
                } else {
                    count -= 1;
                    let version = old.as_ref().map_or(0, |s| s.version);
                    changes.push(Change::Delete { name: name.clone(), version });
                    finals.insert(name, None);
                    Ok((Done::Deleted(true), true))
                }
            }
        };
        outcomes.push(outcome);
    }
    (outcomes, changes, finals)
}
