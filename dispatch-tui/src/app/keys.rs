//! What each key does, given the state: the key half of `App::update`.
//! The order of the checks in `key` is the precedence: Ctrl-C always
//! quits; then a pending confirmation, the filter line being edited, the
//! help pop-up and the dead-letter pop-up, in that order, get the key
//! before the current view does.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};

use super::{App, Cmd, Confirm, Filter, MAX_IDS, View};

impl App {
    pub(super) fn key(&mut self, key: KeyEvent) -> Vec<Cmd> {
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
            KeyCode::Tab => return self.switch(View::ALL[(self.view.index() + 1) % n_views()]),
            KeyCode::BackTab => {
                return self.switch(View::ALL[(self.view.index() + n_views() - 1) % n_views()]);
            }
            KeyCode::Char(c @ '1'..='6') => {
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

    /// "All filtered": the server-side filter when only `sub:`, `tenant:`
    /// and `type:` terms are used, else the listed ids.
    fn all_filtered(&self) -> Value {
        if self.filter.words.is_empty() {
            json!({"filter": {
                "subscription_id": self.filter.subscription_id,
                "tenant_id": self.filter.tenant_id,
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
            .visible_endpoints()
            .get(self.selected())
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
            "type a filter (sub:ID tenant:ID type:T status:ok|failed|CODE, words) · Enter apply · Esc cancel"
        } else if self.detail.is_some() {
            "j/k scroll · r replay · Esc close"
        } else {
            match self.view {
                View::Overview => "1-6/Tab views · +/- refresh · F freeze · ? help · q quit",
                View::Deliveries => "/ filter · j/k move · F freeze · ? help · q quit",
                View::DeadLetters => {
                    "Enter inspect · space mark · r replay · R replay all · x purge · X purge all · / filter · ? help"
                }
                View::Endpoints => "p pause · u resume · d disable · e enable · j/k move · ? help",
                View::Plugins => "r reload · j/k move · ? help · q quit",
                View::EventTypes => "j/k move · ? help · q quit",
            }
        }
    }
}

fn n_views() -> usize {
    View::ALL.len()
}
