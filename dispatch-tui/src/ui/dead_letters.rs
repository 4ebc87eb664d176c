//! The Dead letters view: the list an operator replays or purges from,
//! with a mark column so several can be chosen before one action. One dead
//! letter's detail is a pop-up of its own (`detail`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row};

use super::{clock, cut, opt, table_of};
use crate::app::App;

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let visible = app.visible_dead();
    let rows: Vec<Row> = visible
        .iter()
        .map(|d| {
            let mark = if app.marked.contains(&d.delivery_id) {
                "[x]"
            } else {
                "[ ]"
            };
            Row::new(vec![
                Cell::from(mark),
                Cell::from(d.delivery_id.to_string()),
                Cell::from(cut(&d.event_id, 24)),
                Cell::from(cut(&d.event_type, 20)),
                Cell::from(cut(d.subscription_id.as_deref().unwrap_or("task"), 16)),
                Cell::from(cut(d.tenant_id.as_deref().unwrap_or("-"), 12)),
                Cell::from(format!("{}.{}", d.run, d.attempts)),
                Cell::from(opt(d.last_status_code)),
                Cell::from(clock(&d.died_at)),
                Cell::from(cut(d.last_error.as_deref().unwrap_or(""), 60)),
            ])
        })
        .collect();
    let title = format!(
        " Dead letters: {} listed, {} marked ",
        visible.len(),
        app.marked.len()
    );
    table_of(
        f,
        area,
        title,
        &[
            "",
            "id",
            "event",
            "type",
            "subscription",
            "tenant",
            "try",
            "code",
            "died",
            "last error",
        ],
        rows,
        &[
            Constraint::Length(3),
            Constraint::Length(8),
            Constraint::Length(24),
            Constraint::Length(20),
            Constraint::Length(16),
            Constraint::Length(12),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
        app.selected(),
    );
}
