//! The threads plugins run on: off the async reactor, with stacks deep
//! enough that a guest's own stack cap (at most `MAX_STACK_KB`) always trips
//! before the host thread's.
//!
//! The queue in front of them is bounded: a caller first takes one of
//! `QUEUED_PER_THREAD × threads` admission permits (an async wait, never a
//! blocked reactor thread), held until its job has run. A burst of plugin
//! work therefore waits where it came from (the claimer stops claiming,
//! ingest stops answering), instead of queueing without limit in memory.

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

/// Native stack of each plugin thread: far above any guest's `stack_kb`.
const THREAD_STACK: usize = 16 << 20;

/// Jobs admitted per thread (running or waiting for it).
const QUEUED_PER_THREAD: usize = 8;

/// A fixed pool of plugin threads. Dropping the last handle lets the threads
/// finish their queue and exit.
#[derive(Clone)]
pub struct Runner {
    tx: mpsc::Sender<Job>,
    admitted: Arc<Semaphore>,
}

impl Runner {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("plugin-{i}"))
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panic is a host bug: the caller sees `None`,
                            // the thread lives on.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            tx,
            admitted: Arc::new(Semaphore::new(threads * QUEUED_PER_THREAD)),
        })
    }

    /// Runs `f` on a plugin thread and waits for its result without
    /// blocking the reactor (first for an admission permit, then for the
    /// result). `None` if `f` panicked or the threads are gone: a plugin
    /// job never runs on the caller's thread.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let permit = self.admitted.clone().acquire_owned().await.ok()?;
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(f());
            drop(permit);
        });
        self.tx.send(job).ok()?;
        rx.await.ok()
    }
}
