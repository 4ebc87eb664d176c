//! The threads plugins run on: off the async reactor, with stacks deep
//! enough that a guest's own stack cap (at most `MAX_STACK_KB`) always trips
//! before the host thread's.

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Native stack of each plugin thread: far above any guest's `stack_kb`.
const THREAD_STACK: usize = 16 << 20;

/// A fixed pool of plugin threads. Dropping the last handle lets the threads
/// finish their queue and exit.
#[derive(Clone)]
pub struct Runner {
    tx: mpsc::Sender<Job>,
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
        Ok(Self { tx })
    }

    /// Runs `f` on a plugin thread and waits for its result without
    /// blocking the reactor. `None` if `f` panicked.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(f());
        });
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            // Only when every thread died: run here rather than never.
            job();
        }
        rx.await.ok()
    }
}
