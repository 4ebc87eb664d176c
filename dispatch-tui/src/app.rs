//! The console's state and its update function: keys and answers in,
//! commands out. No I/O here, so every view and key is testable with
//! ratatui's `TestBackend`.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use dispatch_wire::{AdminStats, AttemptEvent, DeadLetterDetail, DeadLetterView, PluginList};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};

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
}

impl View {
    pub const ALL: [View; 5] = [
        View::Overview,
        View::Deliveries,
        View::DeadLetters,
        View::Endpoints,
        View::Plugins,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Deliveries => "Deliveries",
            View::DeadLetters => "Dead letters",
            View::Endpoints => "Endpoints",
            View::Plugins => "Plugins",
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
        event_type: Option<String>,
    },
    FetchDetail(i64),
    FetchPlugins,
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

/// The `/` filter: `sub:ID`, `type:T` and `status:S` terms, and free words
/// matched anywhere in a row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub subscription_id: Option<String>,
    pub event_type: Option<String>,
    pub status: Option<String>,
    pub words: Vec<String>,
}

impl Filter {
    pub fn parse(text: &str) -> Self {
        let mut f = Filter::default();
        for term in text.split_whitespace() {
            if let Some(v) = term.strip_prefix("sub:") {
                f.subscription_id = Some(v.to_string());
            } else if let Some(v) = term.strip_prefix("type:") {
                f.event_type = Some(v.to_string());
            } else if let Some(v) = term.strip_prefix("status:") {
                f.status = Some(v.to_lowercase());
            } else {
                f.words.push(term.to_lowercase());
            }
        }
        f
    }

    fn words_match(&self, haystack: &str) -> bool {
        let h = haystack.to_lowercase();
        self.words.iter().all(|w| h.contains(w.as_str()))
    }

    pub fn attempt(&self, a: &AttemptEvent) -> bool {
        let status = match (a.ok, a.status_code) {
            (true, _) => "ok".to_string(),
            (false, Some(c)) => c.to_string(),
            (false, None) => "error".to_string(),
        };
        self.subscription_id
            .as_ref()
            .is_none_or(|s| a.subscription_id.as_deref() == Some(s.as_str()))
            && self.event_type.as_ref().is_none_or(|t| a.event_type == *t)
            && self
                .status
                .as_ref()
                .is_none_or(|s| *s == status || (s == "failed" && !a.ok) || (s == "ok" && a.ok))
            && self.words_match(&format!(
                "{} {} {} {} {}",
                a.event_id,
                a.event_type,
                a.subscription_id.as_deref().unwrap_or("task"),
                a.url,
                a.error.as_deref().unwrap_or("")
            ))
    }

    /// Dead letters: `sub:` and `type:` go to the server; words filter here.
    pub fn dead_letter(&self, d: &DeadLetterView) -> bool {
        self.words_match(&format!(
            "{} {} {} {} {}",
            d.event_id,
            d.event_type,
            d.subscription_id.as_deref().unwrap_or("task"),
            d.url,
            d.last_error.as_deref().unwrap_or("")
        ))
    }
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
    /// Selected row per view.
    pub selected: [usize; 5],
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
            selected: [0; 5],
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
            _ => {}
        }
        cmds
    }

    fn fetch_dead(&self) -> Cmd {
        Cmd::FetchDeadLetters {
            subscription_id: self.filter.subscription_id.clone(),
            event_type: self.filter.event_type.clone(),
        }
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
            View::Endpoints => self.stats.as_ref().map_or(0, |s| s.endpoints.len()),
            View::Plugins => self.stats.as_ref().map_or(0, |s| s.plugins.len()),
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
                    .push_back((d.pending + d.scheduled + d.in_flight).max(0) as u64);
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
            Msg::DeadLetters(Err(e)) | Msg::Detail(Err(e)) | Msg::Plugins(Err(e)) => {
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

    fn key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return vec![Cmd::Quit];
        }
        if let Some(confirm) = self.confirm.take() {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => vec![confirm.cmd],
                _ => {
                    self.message = Some(Ok("cancelled".into()));
                    vec![]
                }
            };
        }
        if let Some(text) = self.editing.as_mut() {
            match key.code {
                KeyCode::Enter => {
                    self.filter_text = self.editing.take().unwrap_or_default();
                    self.filter = Filter::parse(&self.filter_text);
                    self.select(0);
                    return self.refresh_cmds();
                }
                KeyCode::Esc => self.editing = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) if !c.is_control() => text.push(c),
                _ => {}
            }
            return vec![];
        }
        if self.help {
            self.help = false;
            return vec![];
        }
        if self.detail.is_some() {
            return self.detail_key(key);
        }
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
                return vec![Cmd::Quit];
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('/') => self.editing = Some(self.filter_text.clone()),
            KeyCode::Esc if !self.filter_text.is_empty() => {
                self.filter_text.clear();
                self.filter = Filter::default();
                return self.refresh_cmds();
            }
            KeyCode::Tab => return self.switch(View::ALL[(self.view.index() + 1) % 5]),
            KeyCode::BackTab => return self.switch(View::ALL[(self.view.index() + 4) % 5]),
            KeyCode::Char(c @ '1'..='5') => {
                return self.switch(View::ALL[c as usize - '1' as usize]);
            }
            KeyCode::Char('j') | KeyCode::Down => {
                let next = (self.selected() + 1).min(self.rows().saturating_sub(1));
                self.select(next);
            }
            KeyCode::Char('k') | KeyCode::Up => {
                let prev = self.selected().saturating_sub(1);
                self.select(prev);
            }
            KeyCode::Char('g') | KeyCode::Home => self.select(0),
            KeyCode::Char('G') | KeyCode::End => self.select(self.rows().saturating_sub(1)),
            KeyCode::Char('+') => {
                self.refresh = (self.refresh * 2).min(Duration::from_secs(30));
            }
            KeyCode::Char('-') => {
                self.refresh = (self.refresh / 2).max(Duration::from_millis(250));
            }
            KeyCode::Char('F') => self.paused = !self.paused,
            _ => return self.view_key(key),
        }
        vec![]
    }

    fn switch(&mut self, view: View) -> Vec<Cmd> {
        self.view = view;
        self.refresh_cmds()
    }

    fn detail_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        match key.code {
            KeyCode::Char('j') | KeyCode::Down => self.detail_scroll += 1,
            KeyCode::Char('k') | KeyCode::Up => {
                self.detail_scroll = self.detail_scroll.saturating_sub(1)
            }
            KeyCode::Char('r') => {
                if let Some(d) = &self.detail {
                    let id = d.dead_letter.delivery_id;
                    self.confirm = Some(Confirm {
                        prompt: format!("Replay dead letter {id}?"),
                        cmd: Cmd::DeadLetters("replay", json!({"ids": [id]})),
                    });
                    self.detail = None;
                }
            }
            KeyCode::Char('q') | KeyCode::Esc | KeyCode::Enter => self.detail = None,
            // Switching view or asking for help closes the pop-up.
            KeyCode::Char('1'..='5' | '?') | KeyCode::Tab | KeyCode::BackTab => {
                self.detail = None;
                return self.key(key);
            }
            _ => {}
        }
        vec![]
    }

    fn view_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        match self.view {
            View::DeadLetters => self.dead_key(key),
            View::Endpoints => self.endpoint_key(key),
            View::Plugins if key.code == KeyCode::Char('r') => vec![Cmd::ReloadPlugins],
            _ => vec![],
        }
    }

    /// The ids an action on the dead-letter list applies to: the marked
    /// ones, or else the selected one.
    fn chosen_dead(&self) -> Vec<i64> {
        if !self.marked.is_empty() {
            return self.marked.iter().copied().collect();
        }
        self.visible_dead()
            .get(self.selected())
            .map(|d| vec![d.delivery_id])
            .unwrap_or_default()
    }

    /// "All filtered": the server-side filter when only `sub:`/`type:`
    /// terms are used, else the listed ids.
    fn all_filtered(&self) -> Value {
        if self.filter.words.is_empty() {
            json!({"filter": {
                "subscription_id": self.filter.subscription_id,
                "event_type": self.filter.event_type,
            }})
        } else {
            let ids: Vec<i64> = self
                .visible_dead()
                .iter()
                .take(MAX_IDS)
                .map(|d| d.delivery_id)
                .collect();
            json!({ "ids": ids })
        }
    }

    fn dead_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        let ask = |verb: &str, what: String, action: &'static str, body: Value| Confirm {
            prompt: format!("{verb} {what}?"),
            cmd: Cmd::DeadLetters(action, body),
        };
        let all = self.visible_dead().len();
        let scope = if self.filter_text.is_empty() {
            format!("ALL {all} dead letters")
        } else {
            format!("all {all} dead letters matching \"{}\"", self.filter_text)
        };
        match key.code {
            KeyCode::Char(' ') => {
                if let Some(d) = self.visible_dead().get(self.selected()) {
                    let id = d.delivery_id;
                    if !self.marked.remove(&id) {
                        self.marked.insert(id);
                    }
                    let next = (self.selected() + 1).min(all.saturating_sub(1));
                    self.select(next);
                }
            }
            KeyCode::Enter => {
                if let Some(d) = self.visible_dead().get(self.selected()) {
                    return vec![Cmd::FetchDetail(d.delivery_id)];
                }
            }
            KeyCode::Char(c @ ('r' | 'x')) => {
                let ids = self.chosen_dead();
                if !ids.is_empty() {
                    let (verb, action) = if c == 'r' {
                        ("Replay", "replay")
                    } else {
                        ("Purge", "purge")
                    };
                    let what = match ids.as_slice() {
                        [one] => format!("dead letter {one}"),
                        many => format!("{} marked dead letters", many.len()),
                    };
                    self.confirm = Some(ask(verb, what, action, json!({ "ids": ids })));
                }
            }
            KeyCode::Char('R') if all > 0 => {
                self.confirm = Some(ask("Replay", scope, "replay", self.all_filtered()));
            }
            KeyCode::Char('X') if all > 0 => {
                self.confirm = Some(ask("Purge", scope, "purge", self.all_filtered()));
            }
            _ => {}
        }
        vec![]
    }

    fn endpoint_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        let Some(id) = self
            .stats
            .as_ref()
            .and_then(|s| s.endpoints.get(self.selected()))
            .map(|e| e.subscription_id.clone())
        else {
            return vec![];
        };
        match key.code {
            KeyCode::Char('p') => vec![Cmd::Endpoint(id, "pause")],
            KeyCode::Char('u') => vec![Cmd::Endpoint(id, "resume")],
            KeyCode::Char('e') => vec![Cmd::Endpoint(id, "enable")],
            KeyCode::Char('d') => {
                self.confirm = Some(Confirm {
                    prompt: format!("Disable endpoint {id}? Its deliveries park until enabled."),
                    cmd: Cmd::Endpoint(id, "disable"),
                });
                vec![]
            }
            _ => vec![],
        }
    }

    /// The hint bar for the current state.
    pub fn hints(&self) -> &'static str {
        if self.confirm.is_some() {
            "y confirm · any other key cancels"
        } else if self.editing.is_some() {
            "type a filter (sub:ID type:T status:ok|failed|CODE, words) · Enter apply · Esc cancel"
        } else if self.detail.is_some() {
            "j/k scroll · r replay · Esc close"
        } else {
            match self.view {
                View::Overview => "1-5/Tab views · +/- refresh · F freeze · ? help · q quit",
                View::Deliveries => "/ filter · j/k move · F freeze · ? help · q quit",
                View::DeadLetters => {
                    "Enter inspect · space mark · r replay · R replay all · x purge · X purge all · / filter · ? help"
                }
                View::Endpoints => "p pause · u resume · d disable · e enable · j/k move · ? help",
                View::Plugins => "r reload · j/k move · ? help · q quit",
            }
        }
    }
}
