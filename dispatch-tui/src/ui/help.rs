//! The `?` pop-up: every key and what it does. The list is written by hand
//! rather than derived from the key handling, so a new binding needs a
//! line here too.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Stylize;
use ratatui::widgets::{Block, Cell, Clear, Row, Table};

use super::centered;

const KEYS: &[(&str, &str)] = &[
    ("1-6, Tab, S-Tab", "switch view"),
    ("j/k, ↑/↓, g/G", "move"),
    (
        "/",
        "filter: sub:ID tenant:ID type:T status:ok|failed|CODE, words",
    ),
    ("Esc", "clear the filter, close a pop-up"),
    ("+ / -", "slower / faster refresh"),
    ("F", "freeze / unfreeze refresh"),
    ("Enter", "inspect a dead letter"),
    ("space", "mark a dead letter"),
    ("r / R", "replay selected or marked / all filtered"),
    ("x / X", "purge selected or marked / all filtered"),
    ("p u d e", "endpoint: pause, resume, disable, enable"),
    ("r (Plugins)", "reload plugins"),
    ("q, Ctrl-C", "quit"),
];

pub(super) fn draw(f: &mut Frame, body: Rect) {
    let area = centered(body, 78, KEYS.len() as u16 + 2);
    let rows: Vec<Row> = KEYS
        .iter()
        .map(|(k, v)| Row::new(vec![Cell::from(*k).bold(), Cell::from(*v)]))
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Table::new(rows, [Constraint::Length(18), Constraint::Min(10)])
            .block(Block::bordered().title(" Keys (any key closes) ")),
        area,
    );
}
