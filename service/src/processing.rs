//! Where CPU work runs: the render pool, and the single flight that coalesces identical renders.
//!
//! Vocabulary: a *slot* is the right to run a render now (one per render thread by default);
//! *admission* is the right to run or wait for a slot. Admission is refused at once when every
//! slot is taken and the queue is full, so overload answers 503 quickly instead of queueing
//! without bound. A render holds its slot and admission until the CPU work ends, even when the
//! request that asked for it has given up, so the counts always match the work really running.
//!
//! Architecture invariant: tokio's worker threads never run engine code; they await a oneshot
//! channel that a rayon thread completes.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::{Semaphore, oneshot};

use crate::telemetry;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("every render slot is busy and the queue is full")]
    Overloaded,
    #[error("the render did not finish within {0:?}")]
    TimedOut(Duration),
    #[error("the render thread stopped without an answer")]
    Lost,
    #[error("the render panicked: {0}")]
    Panicked(String),
}

/// A rayon pool with bounded admission.
#[derive(Debug, Clone)]
pub struct RenderPool {
    threads: Arc<rayon::ThreadPool>,
    admission: Arc<Semaphore>,
    slots: Arc<Semaphore>,
    timeout: Duration,
}

impl RenderPool {
    /// `in_flight` renders run at once (0 = one per core); `queue` more may wait for a slot;
    /// a render that has not finished after `timeout` (waiting included) is answered as timed out.
    ///
    /// The pool has exactly one thread per slot, so a render that holds a slot is running, never
    /// waiting in rayon's queue with its time limit passing; a render parallelises inside itself
    /// only onto threads that other slots leave idle.
    pub fn new(in_flight: usize, queue: usize, timeout: Duration) -> anyhow::Result<RenderPool> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let in_flight = if in_flight == 0 { cores } else { in_flight };
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(in_flight)
            .thread_name(|i| format!("pixelmill-render-{i}"))
            .build()?;
        Ok(RenderPool {
            threads: Arc::new(threads),
            admission: Arc::new(Semaphore::new(in_flight + queue)),
            slots: Arc::new(Semaphore::new(in_flight)),
            timeout,
        })
    }

    /// Runs `job` on the pool and awaits its result. Waiting for a slot and running each have
    /// the time limit: a job still waiting when it passes never ran, and that is overload (503),
    /// not a slow render (504); a job that runs past it is a slow render.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let Ok(admitted) = self.admission.clone().try_acquire_owned() else {
            metrics::counter!(telemetry::RENDER_REJECTED, "reason" => "overloaded").increment(1);
            return Err(PoolError::Overloaded);
        };
        let slot = match tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned()).await {
            Ok(slot) => slot.map_err(|_| PoolError::Lost)?,
            Err(_) => {
                metrics::counter!(telemetry::RENDER_REJECTED, "reason" => "overloaded").increment(1);
                return Err(PoolError::Overloaded);
            }
        };
        let (sender, receiver) = oneshot::channel();
        self.threads.spawn(move || {
            let gauge = metrics::gauge!(telemetry::RENDERS_IN_FLIGHT);
            gauge.increment(1.0);
            // A panic is a bug of ours: it fails this render alone, never the process (rayon
            // aborts on a panic that escapes a spawned job).
            let result = std::panic::catch_unwind(AssertUnwindSafe(job)).map_err(|panic| {
                let cause = panic_message(panic.as_ref());
                metrics::counter!(telemetry::RENDER_PANICS).increment(1);
                tracing::error!(cause = %cause, "render panicked");
                PoolError::Panicked(cause)
            });
            gauge.decrement(1.0);
            drop((slot, admitted));
            // The receiver is gone when the request timed out or was cancelled.
            let _ = sender.send(result);
        });
        match tokio::time::timeout(self.timeout, receiver).await {
            Ok(result) => result.map_err(|_| PoolError::Lost)?,
            Err(_) => {
                metrics::counter!(telemetry::RENDER_REJECTED, "reason" => "timeout").increment(1);
                Err(PoolError::TimedOut(self.timeout))
            }
        }
    }
}

/// The message of a panic payload (`panic!` makes a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Coalesces concurrent calls with one key into one run of the work. The work runs in its own
/// task, so a caller that goes away does not cancel it for the others; it leaves the map when
/// it ends, so a later call starts afresh (and by then usually finds the result cached).
pub struct SingleFlight<T: Clone> {
    flights: Arc<Mutex<HashMap<String, Flight<T>>>>,
}

/// One run under way; `None` if its work panicked.
type Flight<T> = Shared<BoxFuture<'static, Option<T>>>;

impl<T: Clone> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight { flights: Arc::new(Mutex::new(HashMap::new())) }
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// Runs `work` unless a run for `key` is under way, and returns its result with `true` when
    /// this call started the run. `None` only if the work panicked.
    pub async fn run<F>(&self, key: &str, work: impl FnOnce() -> F) -> (Option<T>, bool)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (flight, leader) = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            match flights.get(key) {
                Some(flight) => (flight.clone(), false),
                None => {
                    let task = tokio::spawn(work());
                    let map = Arc::clone(&self.flights);
                    let owned_key = key.to_owned();
                    let flight = async move {
                        let result = task.await.ok();
                        map.lock().unwrap_or_else(PoisonError::into_inner).remove(&owned_key);
                        result
                    }
                    .boxed()
                    .shared();
                    flights.insert(key.to_owned(), flight.clone());
                    // Drive the flight even if every caller goes away, so the entry is removed.
                    tokio::spawn(flight.clone());
                    (flight, true)
                }
            }
        };
        (flight.await, leader)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Waits until `condition` holds, yielding to the runtime; fails the test after 10 s
    /// instead of hanging.
    async fn until(what: &str, mut condition: impl FnMut() -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while !condition() {
                tokio::task::yield_now().await;
            }
        });
        waited.await.unwrap_or_else(|_| panic!("timed out waiting until {what}"));
    }

    #[tokio::test]
    async fn overload_is_refused_at_once_and_the_queue_drains() {
        let pool = RenderPool::new(1, 1, Duration::from_secs(10)).unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let first = {
            let pool = pool.clone();
            let hold = Arc::clone(&hold);
            tokio::spawn(async move { pool.run(move || hold.lock().unwrap().recv().is_ok()).await })
        };
        until("the first job holds the only slot", || pool.slots.available_permits() == 0).await;
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 7).await })
        };
        until("the second job is admitted", || pool.admission.available_permits() == 0).await;
        assert_eq!(pool.run(|| 0).await, Err(PoolError::Overloaded));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        assert_eq!(queued.await.unwrap(), Ok(7));
        assert_eq!(pool.run(|| 1).await, Ok(1));
    }

    #[tokio::test]
    async fn a_slow_render_times_out_and_keeps_its_slot_until_done() {
        let pool = RenderPool::new(1, 0, Duration::from_millis(50)).unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let result = pool.run(move || hold.recv().is_ok()).await;
        assert_eq!(result, Err(PoolError::TimedOut(Duration::from_millis(50))));
        assert_eq!(pool.run(|| 0).await, Err(PoolError::Overloaded), "the slot is still held by the running job");
        release.send(()).unwrap();
        until("the finished job frees its admission", || pool.admission.available_permits() == 1).await;
        assert_eq!(pool.run(|| 2).await, Ok(2));
    }

    #[tokio::test]
    async fn a_job_that_never_got_a_slot_is_overload_not_a_timeout() {
        let pool = RenderPool::new(1, 1, Duration::from_millis(50)).unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || hold.recv().is_ok()).await })
        };
        until("the first job holds the only slot", || pool.slots.available_permits() == 0).await;
        // Queued behind the running job until the limit passes: it never ran.
        assert_eq!(pool.run(|| 3).await, Err(PoolError::Overloaded));
        assert_eq!(running.await.unwrap(), Err(PoolError::TimedOut(Duration::from_millis(50))));
        release.send(()).unwrap();
    }

    #[tokio::test]
    async fn every_slot_has_a_thread_so_admitted_jobs_run_at_once() {
        // Three slots: three jobs that each wait for the other two can only finish if all three
        // run at the same time, whatever the machine's core count.
        let pool = RenderPool::new(3, 0, Duration::from_secs(10)).unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let jobs: Vec<_> = (0..3)
            .map(|i| {
                let pool = pool.clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    pool.run(move || {
                        barrier.wait();
                        i
                    })
                    .await
                })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.await.unwrap(), Ok(i));
        }
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_pool_keeps_serving() {
        let pool = RenderPool::new(1, 0, Duration::from_secs(10)).unwrap();
        let result: Result<u8, PoolError> = pool.run(|| panic!("injected fault")).await;
        assert_eq!(result, Err(PoolError::Panicked("injected fault".to_owned())));
        let formatted: Result<u8, PoolError> = pool.run(|| panic!("fault {}", 7)).await;
        assert_eq!(formatted, Err(PoolError::Panicked("fault 7".to_owned())));
        // The slot and the thread are back.
        assert_eq!(pool.run(|| 5).await, Ok(5));
        assert_eq!(pool.slots.available_permits(), 1);
    }

    #[tokio::test]
    async fn identical_concurrent_calls_run_once() {
        const CALLERS: usize = 8;
        let flights: Arc<SingleFlight<usize>> = Arc::new(SingleFlight::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let flights = Arc::clone(&flights);
                let runs = Arc::clone(&runs);
                let mut wait = wait.clone();
                tokio::spawn(async move {
                    flights
                        .run("same", move || async move {
                            let _ = wait.wait_for(|go| *go).await;
                            runs.fetch_add(1, Ordering::SeqCst) + 40
                        })
                        .await
                })
            })
            .collect();
        // Every caller holds a clone of the flight, as do the map and the task that drives it:
        // once all are counted, every caller has joined before the work may end.
        until("every caller joined the flight", || {
            let flights = flights.flights.lock().unwrap();
            flights.get("same").and_then(Shared::strong_count) == Some(CALLERS + 2)
        })
        .await;
        release.send(true).unwrap();
        let mut leaders = 0;
        for caller in callers {
            let (value, leader) = caller.await.unwrap();
            assert_eq!(value, Some(40));
            leaders += usize::from(leader);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        assert!(flights.flights.lock().unwrap().is_empty(), "a finished flight leaves the map");
    }
}
