//! The console's state and its update function: keys and answers in,
//! commands out. No I/O here, so every view and key is testable with
//! ratatui's `TestBackend`. The `/` filter (`filter`) and what each key
//! does (`keys`) have files of their own; this one holds the types and the
//! answers' side of `update`.

mod filter;
mod keys;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use dispatch_wire::{
    AdminStats, AttemptEvent, DeadLetterDetail, DeadLetterView, EndpointStats, EventTypeView,
    PluginList,
};
use ratatui::crossterm::event::KeyEvent;
use serde_json::Value;

pub use filter::Filter;

/// Most attempts the live tail keeps.
pub const TAIL: usize = 1000;
/// Queue-depth samples kept for the chart (one per refresh).
pub const DEPTH_HISTORY: usize = 120;
/// Most ids the API takes in one replay or purge.
pub const MAX_IDS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Deliveries,
    DeadLetters,
    Endpoints,
    Plugins,
    EventTypes,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Deliveries,
        View::DeadLetters,
        View::Endpoints,
        View::Plugins,
        View::EventTypes,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Deliveries => "Deliveries",
            View::DeadLetters => "Dead letters",
            View::Endpoints => "Endpoints",
            View::Plugins => "Plugins",
            View::EventTypes => "Event types",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    Connecting,
    Connected,
    /// The last request failed; refreshes keep trying.
    Disconnected(String),
}

/// What the app asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    FetchStats,
    FetchDeadLetters {
        subscription_id: Option<String>,
        tenant_id: Option<String>,
        event_type: Option<String>,
    },
    FetchDetail(i64),
    FetchPlugins,
    FetchEventTypes,
    /// `replay` or `purge` with its JSON body.
    DeadLetters(&'static str, Value),
    /// `pause`, `resume`, `disable` or `enable`.
    Endpoint(String, &'static str),
    ReloadPlugins,
    Quit,
}

/// What comes back.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// The refresh interval elapsed.
    Tick,
    Stats(Result<AdminStats, String>),
    DeadLetters(Result<Vec<DeadLetterView>, String>),
    Detail(Result<DeadLetterDetail, String>),
    Plugins(Result<PluginList, String>),
    EventTypes(Result<Vec<EventTypeView>, String>),
    Attempt(AttemptEvent),
    /// An action finished: what to tell the operator.
    Done(Result<String, String>),
}

/// A destructive action waiting for `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub prompt: String,
    pub cmd: Cmd,
}

pub struct App {
    pub url: String,
    pub view: View,
    pub conn: Conn,
    pub stats: Option<AdminStats>,
    /// Waiting deliveries (pending, scheduled, in flight), one per refresh.
    pub depth: VecDeque<u64>,
    /// Newest first.
    pub attempts: VecDeque<AttemptEvent>,
    pub dead: Vec<DeadLetterView>,
    pub marked: BTreeSet<i64>,
    pub detail: Option<DeadLetterDetail>,
    pub detail_scroll: u16,
    pub plugins: Option<PluginList>,
    /// The event-type catalogue, operational types included.
    pub event_types: Vec<EventTypeView>,
    /// Selected row per view.
    pub selected: [usize; 6],
    pub filter_text: String,
    pub filter: Filter,
    /// The filter line is being edited (its text so far).
    pub editing: Option<String>,
    pub confirm: Option<Confirm>,
    pub help: bool,
    pub refresh: Duration,
    pub paused: bool,
    /// The last action's outcome, shown above the hint bar.
    pub message: Option<Result<String, String>>,
    pub quit: bool,
}

impl App {
    pub fn new(url: &str, refresh: Duration) -> Self {
        Self {
            url: url.to_string(),
            view: View::Overview,
            conn: Conn::Connecting,
            stats: None,
            depth: VecDeque::new(),
            attempts: VecDeque::new(),
            dead: Vec::new(),
            marked: BTreeSet::new(),
            detail: None,
            detail_scroll: 0,
            plugins: None,
            event_types: Vec::new(),
            selected: [0; 6],
            filter_text: String::new(),
            filter: Filter::default(),
            editing: None,
            confirm: None,
            help: false,
            refresh,
            paused: false,
            message: None,
            quit: false,
        }
    }

    /// What a refresh fetches: the stats, and the current view's list.
    pub fn refresh_cmds(&self) -> Vec<Cmd> {
        let mut cmds = vec![Cmd::FetchStats];
        match self.view {
            View::DeadLetters => cmds.push(self.fetch_dead()),
            View::Plugins => cmds.push(Cmd::FetchPlugins),
            View::EventTypes => cmds.push(Cmd::FetchEventTypes),
            _ => {}
        }
        cmds
    }

    fn fetch_dead(&self) -> Cmd {
        Cmd::FetchDeadLetters {
            subscription_id: self.filter.subscription_id.clone(),
            tenant_id: self.filter.tenant_id.clone(),
            event_type: self.filter.event_type.clone(),
        }
    }

    /// The endpoints the filter lets through, in the snapshot's order: the
    /// rows the Endpoints view shows and its keys act on.
    pub fn visible_endpoints(&self) -> Vec<&EndpointStats> {
        self.stats.as_ref().map_or_else(Vec::new, |s| {
            s.endpoints
                .iter()
                .filter(|e| self.filter.endpoint(e))
                .collect()
        })
    }

    pub fn visible_attempts(&self) -> Vec<&AttemptEvent> {
        self.attempts
            .iter()
            .filter(|a| self.filter.attempt(a))
            .collect()
    }

    pub fn visible_dead(&self) -> Vec<&DeadLetterView> {
        self.dead
            .iter()
            .filter(|d| self.filter.dead_letter(d))
            .collect()
    }

    fn rows(&self) -> usize {
        match self.view {
            View::Overview => 0,
            View::Deliveries => self.visible_attempts().len(),
            View::DeadLetters => self.visible_dead().len(),
            View::Endpoints => self.visible_endpoints().len(),
            View::Plugins => self.stats.as_ref().map_or(0, |s| s.plugins.len()),
            View::EventTypes => self.event_types.len(),
        }
    }

    pub fn selected(&self) -> usize {
        self.selected[self.view.index()].min(self.rows().saturating_sub(1))
    }

    fn select(&mut self, row: usize) {
        self.selected[self.view.index()] = row;
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        match msg {
            Msg::Key(key) => self.key(key),
            Msg::Tick => {
                if self.paused {
                    vec![]
                } else {
                    self.refresh_cmds()
                }
            }
            Msg::Stats(Ok(stats)) => {
                let d = &stats.deliveries;
                self.depth
                    .push_back((d.pending + d.scheduled + d.in_flight + d.held).max(0) as u64);
                while self.depth.len() > DEPTH_HISTORY {
                    self.depth.pop_front();
                }
                self.stats = Some(stats);
                self.conn = Conn::Connected;
                vec![]
            }
            Msg::Stats(Err(e)) => {
                self.conn = Conn::Disconnected(e);
                vec![]
            }
            Msg::DeadLetters(Ok(rows)) => {
                let live: BTreeSet<i64> = rows.iter().map(|r| r.delivery_id).collect();
                self.marked.retain(|id| live.contains(id));
                self.dead = rows;
                vec![]
            }
            Msg::Detail(Ok(d)) => {
                self.detail = Some(d);
                self.detail_scroll = 0;
                vec![]
            }
            Msg::Plugins(Ok(p)) => {
                self.plugins = Some(p);
                vec![]
            }
            Msg::EventTypes(Ok(types)) => {
                self.event_types = types;
                vec![]
            }
            Msg::DeadLetters(Err(e))
            | Msg::Detail(Err(e))
            | Msg::Plugins(Err(e))
            | Msg::EventTypes(Err(e)) => {
                self.message = Some(Err(e));
                vec![]
            }
            Msg::Attempt(a) => {
                self.attempts.push_front(a);
                self.attempts.truncate(TAIL);
                vec![]
            }
            Msg::Done(outcome) => {
                self.message = Some(outcome);
                self.marked.clear();
                self.refresh_cmds()
            }
        }
    }
}
