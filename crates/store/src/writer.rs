//! Group commit. Every change of the platform runs as a job on one writer
//! task per process: the writer takes all jobs that are waiting, runs each in
//! its own savepoint inside one database transaction, appends the audit
//! entries of the jobs that succeeded, and commits once — one fsync for many
//! changes, and each change in the same transaction as its audit entries.
//! A job that fails rolls back to its savepoint and leaves no trace; a commit
//! that fails fails every job of the batch.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::{AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use shuyu_audit::Hash;
use shuyu_audit::merkle::NodeId;

use crate::log::{self, Event, Head, NodeCache};
use crate::{Backend, Conn, StoreError};

/// Most jobs committed together.
const MAX_BATCH: usize = 2048;
/// Most scheduler turns the writer waits for a batch to fill up to the previous one's size.
const GATHER_TURNS: usize = 8;

/// The transaction a job runs in: its connection, and the audit events it records.
pub struct Tx<'c> {
    conn: &'c mut Conn,
    events: Vec<Event>,
    unaudited: Option<&'static str>,
}

impl<'c> Tx<'c> {
    /// The connection, for queries.
    pub fn conn(&mut self) -> &mut Conn {
        self.conn
    }

    /// Records an audit event; it is appended to the log in this transaction.
    pub fn record(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Declares this change housekeeping that needs no audit entry (counters, expiry clean-up).
    /// Every other change must [`Tx::record`] at least one event, or it is refused.
    pub fn housekeeping(&mut self, reason: &'static str) {
        self.unaudited = Some(reason);
    }
}

/// What a finished job hands back: whether to keep its changes, and how to deliver its result.
pub(crate) struct Finished {
    ok: bool,
    events: Vec<Event>,
    deliver: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

type RunFn = Box<dyn for<'t, 'c> FnOnce(&'t mut Tx<'c>) -> BoxFuture<'t, Finished> + Send>;

/// A unit of work for the writer.
pub(crate) enum Job {
    /// A change with its audit events.
    Run(RunFn),
    /// Audit events with no other change (data access, login failures, benchmarks).
    Append(Vec<Event>, oneshot::Sender<Result<(), StoreError>>),
}

/// Wraps a typed closure into a job; its result arrives on the returned receiver after commit.
pub(crate) fn job<T, E, F>(f: F) -> (Job, oneshot::Receiver<Result<T, E>>)
where
    F: for<'t, 'c> FnOnce(&'t mut Tx<'c>) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let (tx_done, rx_done) = oneshot::channel::<Result<T, E>>();
    let run: RunFn = Box::new(move |tx: &mut Tx<'_>| {
        Box::pin(async move {
            let result = f(tx).await;
            let mut ok = result.is_ok();
            let events = std::mem::take(&mut tx.events);
            let mut result = result;
            if ok && events.is_empty() && tx.unaudited.is_none() {
                ok = false;
                result = Err(E::from(StoreError::Unaudited));
            }
            let deliver: Box<dyn FnOnce(Result<(), StoreError>) + Send> = Box::new(move |commit| {
                let out = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(E::from(e)),
                    (Err(e), _) => Err(e),
                };
                let _ = tx_done.send(out);
            });
            Finished { ok, events, deliver }
        })
    });
    (Job::Run(run), rx_done)
}

/// Starts the writer task for `pool`; jobs are sent on the returned channel.
pub(crate) fn spawn(pool: AnyPool, backend: Backend, cache: Arc<NodeCache>) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>(8192);
    tokio::spawn(run(pool, backend, cache, receiver));
    sender
}

async fn run(pool: AnyPool, backend: Backend, cache: Arc<NodeCache>, mut jobs: mpsc::Receiver<Job>) {
    let mut head: Option<Head> = None;
    let mut last_batch = 1usize;
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        // Callers woken by the previous commit are still submitting: give them a few
        // scheduler turns to join this batch (like PostgreSQL's commit_delay, but bounded
        // by turns, not time), so one fsync serves as many of them as possible.
        let mut turns = 0;
        loop {
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            if batch.len() >= MAX_BATCH || batch.len() * 4 >= last_batch * 3 || turns >= GATHER_TURNS {
                break;
            }
            turns += 1;
            tokio::task::yield_now().await;
        }
        last_batch = batch.len();
        head = commit_batch(&pool, backend, &cache, head, batch).await;
    }
}

/// A delivery to make once the batch's fate is known.
enum Pending {
    Run(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
    Append(oneshot::Sender<Result<(), StoreError>>),
}

impl Pending {
    fn deliver(self, outcome: Result<(), StoreError>) {
        match self {
            Pending::Run(d) => d(outcome),
            Pending::Append(s) => {
                let _ = s.send(outcome);
            }
        }
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    StoreError::Batch(e.to_string())
}

async fn commit_batch(
    pool: &AnyPool,
    backend: Backend,
    cache: &NodeCache,
    head: Option<Head>,
    batch: Vec<Job>,
) -> Option<Head> {
    let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
    let mut events: Vec<Event> = Vec::new();
    let started = match begin(pool, backend).await {
        Ok(c) => c,
        Err(e) => {
            for job in batch {
                match job {
                    // The closure never ran: its result channel closes and the caller sees the failure.
                    Job::Run(_) => {}
                    Job::Append(_, s) => {
                        let _ = s.send(Err(clone_err(&e)));
                    }
                }
            }
            tracing::error!(error = %e, "audit writer could not begin a transaction");
            return None;
        }
    };
    let mut tx = started;
    let outcome: Result<(Head, Vec<(NodeId, Hash)>), StoreError> = async {
        let mut head = log::load_head(&mut tx, head).await?;
        for job in batch {
            match job {
                Job::Append(evs, s) => {
                    events.extend(evs);
                    pending.push(Pending::Append(s));
                }
                Job::Run(f) => {
                    tx.execute("SAVEPOINT shuyu_job").await?;
                    let mut t = Tx {
                        conn: &mut tx,
                        events: Vec::new(),
                        unaudited: None,
                    };
                    let finished = AssertUnwindSafe(f(&mut t)).catch_unwind().await;
                    match finished {
                        Ok(Finished {
                            ok: true,
                            events: evs,
                            deliver,
                        }) => {
                            tx.execute("RELEASE SAVEPOINT shuyu_job").await?;
                            events.extend(evs);
                            pending.push(Pending::Run(deliver));
                        }
                        Ok(Finished { ok: false, deliver, .. }) => {
                            tx.execute("ROLLBACK TO SAVEPOINT shuyu_job").await?;
                            tx.execute("RELEASE SAVEPOINT shuyu_job").await?;
                            // A failed job's result is final now; its rollback cannot be undone by others.
                            deliver(Ok(()));
                        }
                        Err(_) => {
                            tracing::error!("a write job panicked; its changes were rolled back");
                            tx.execute("ROLLBACK TO SAVEPOINT shuyu_job").await?;
                            tx.execute("RELEASE SAVEPOINT shuyu_job").await?;
                        }
                    }
                }
            }
        }
        let written = log::append(&mut tx, &mut head, events).await?;
        Ok((head, written))
    }
    .await;
    match outcome {
        Ok((new_head, written)) => match tx.commit().await {
            Ok(()) => {
                // Only committed nodes are cached.
                cache.remember(written);
                for p in pending {
                    p.deliver(Ok(()));
                }
                Some(new_head)
            }
            Err(e) => {
                let e = StoreError::from(e);
                tracing::error!(error = %e, "commit failed; the batch is lost");
                for p in pending {
                    p.deliver(Err(clone_err(&e)));
                }
                None
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "write batch failed; rolled back");
            let _ = tx.rollback().await;
            for p in pending {
                p.deliver(Err(clone_err(&e)));
            }
            None
        }
    }
}

/// Begins the batch transaction, holding the log's write lock across processes.
async fn begin(pool: &AnyPool, backend: Backend) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    match backend {
        // IMMEDIATE takes SQLite's write lock up front (no upgrade deadlocks with other processes).
        Backend::Sqlite => Ok(pool.begin_with("BEGIN IMMEDIATE").await?),
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            // One writer at a time across server replicas: the log is a sequence.
            tx.execute("SELECT pg_advisory_xact_lock(7384920117)").await?;
            Ok(tx)
        }
    }
}
