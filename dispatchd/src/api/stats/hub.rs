//! The node's one live view of the admin figures, shared by every
//! `/admin/stats` caller, every `/admin/stream` client and `/metrics`.
//!
//! A snapshot is computed at most once a second (one caller reads the
//! database, the others wait for its result), and the attempts of the live
//! tail are read once a second into a ring that every stream client reads
//! from its own position. So the database does the same work for one
//! watcher or a hundred. An operator change made through this node (pause,
//! replay, purge, ...) marks the snapshot stale, so it shows at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dispatch_wire::{AdminStats, AttemptEvent};

use super::{TAIL_BATCH, WINDOW_SECS, shape};
use crate::model::now_ms;
use crate::store::{Store, StoreError};

/// How long a snapshot is shared before it is read again.
const FRESH: Duration = Duration::from_secs(1);
/// The longest one read of the figures may take.
const READ_LIMIT: Duration = Duration::from_secs(5);
/// Attempts the ring keeps for stream clients (two busy seconds' worth).
const RING: usize = 2 * TAIL_BATCH as usize;

/// One second's view: the snapshot (or why it could not be read) and the
/// newest attempts, oldest first.
#[derive(Clone)]
pub struct Tick {
    pub stats: Result<Arc<AdminStats>, StoreError>,
    pub attempts: Arc<Vec<AttemptEvent>>,
    /// Whether reading the attempts failed this time.
    pub tail_error: Option<StoreError>,
}

/// The shared view (see the module docs).
pub struct StatsHub {
    store: Arc<dyn Store>,
    live_ms: i64,
    state: tokio::sync::Mutex<State>,
    /// Set by `mark_stale`: an atomic, so marking never waits for a read.
    stale: AtomicBool,
}

#[derive(Default)]
struct State {
    read_at: Option<Instant>,
    last: Option<Tick>,
    /// The id of the newest attempt read into the ring.
    cursor: Option<i64>,
    ring: VecDeque<AttemptEvent>,
}

impl StatsHub {
    /// A hub over `store`; a node counts as live while its heartbeat is
    /// younger than `node_timeout`.
    pub fn new(store: Arc<dyn Store>, node_timeout: Duration) -> Self {
        Self {
            store,
            live_ms: i64::try_from(node_timeout.as_millis()).unwrap_or(i64::MAX),
            state: tokio::sync::Mutex::new(State::default()),
            stale: AtomicBool::new(false),
        }
    }

    /// The current view, read from the database when the last one is a
    /// second old (or was marked stale).
    pub async fn tick(&self) -> Tick {
        let mut st = self.state.lock().await;
        let stale = self.stale.swap(false, Ordering::AcqRel);
        if let (Some(at), Some(last)) = (st.read_at, &st.last)
            && at.elapsed() < FRESH
            && !stale
        {
            return last.clone();
        }
        // Bounded, so a stalled database answers every watcher with an
        // error after a while instead of holding them all.
        let tick = match tokio::time::timeout(READ_LIMIT, self.read(&mut st)).await {
            Ok(tick) => tick,
            Err(_) => Tick {
                stats: Err(StoreError::Unavailable(
                    "reading the figures timed out".into(),
                )),
                attempts: Arc::new(st.ring.iter().cloned().collect()),
                tail_error: None,
            },
        };
        st.read_at = Some(Instant::now());
        st.last = Some(tick.clone());
        tick
    }

    /// The snapshot alone (`/admin/stats`, `/metrics`).
    pub async fn snapshot(&self) -> Result<Arc<AdminStats>, StoreError> {
        self.tick().await.stats
    }

    /// The next `tick` reads the database again: something this node did
    /// changed the figures.
    pub async fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    async fn read(&self, st: &mut State) -> Tick {
        let now = now_ms();
        let first = now / 1000 - WINDOW_SECS;
        let stats = self
            .store
            .stats(first * 1000)
            .await
            .map(|raw| Arc::new(shape::shape(raw, now, self.store.backend(), self.live_ms)));
        let limit = if st.cursor.is_none() { 50 } else { TAIL_BATCH };
        let mut tail_error = None;
        match self.store.attempt_tail(st.cursor, limit).await {
            Ok(rows) => {
                let full = st.cursor.is_some() && rows.len() == TAIL_BATCH as usize;
                for a in rows {
                    st.cursor = Some(st.cursor.map_or(a.id, |c| c.max(a.id)));
                    st.ring.push_back(shape::attempt_event(a));
                }
                // Nothing yet: start from the beginning next time.
                st.cursor = st.cursor.or(Some(0));
                // Busier than the tail shows: skip to the newest rather than
                // fall further behind every second.
                if full && let Ok(latest) = self.store.attempt_tail(None, 1).await {
                    st.cursor = st.cursor.max(latest.last().map(|a| a.id));
                }
                while st.ring.len() > RING {
                    st.ring.pop_front();
                }
            }
            Err(e) => tail_error = Some(e),
        }
        Tick {
            stats,
            attempts: Arc::new(st.ring.iter().cloned().collect()),
            tail_error,
        }
    }
}
