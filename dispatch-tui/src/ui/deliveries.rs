//! The Deliveries view: the live tail of attempts from `/admin/stream`,
//! newest first, narrowed by the `/` filter. Colour marks the result, but
//! the status code is always spelled out so a plain capture reads the same.
//! dispatchd's own operational events (`dispatch.*`) are marked `◆`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::widgets::{Cell, Row};

use super::{clock, cut, table_of};
use crate::app::App;

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let rows: Vec<Row> = app
        .visible_attempts()
        .into_iter()
        .map(|a| {
            let result = match (a.ok, a.status_code) {
                (true, Some(c)) => Cell::from(c.to_string()).fg(Color::Green),
                (false, Some(c)) => Cell::from(c.to_string()).fg(Color::Red),
                (_, None) => Cell::from("error").fg(Color::Red),
            };
            Row::new(vec![
                Cell::from(clock(&a.at)),
                Cell::from(cut(&a.event_id, 24)),
                if a.event_type.starts_with("dispatch.") {
                    Cell::from(cut(&format!("◆ {}", a.event_type), 20)).fg(Color::Magenta)
                } else {
                    Cell::from(cut(&a.event_type, 20))
                },
                Cell::from(cut(a.subscription_id.as_deref().unwrap_or("task"), 16)),
                Cell::from(format!("{}.{}", a.run, a.attempt)),
                result,
                Cell::from(format!("{}", a.duration_ms)),
                Cell::from(cut(a.error.as_deref().unwrap_or(""), 60)),
            ])
        })
        .collect();
    let title = format!(
        " Deliveries: live tail, newest first ({} of {} kept) ",
        rows.len(),
        app.attempts.len()
    );
    table_of(
        f,
        area,
        title,
        &[
            "time",
            "event",
            "type",
            "subscription",
            "try",
            "result",
            "ms",
            "error",
        ],
        rows,
        &[
            Constraint::Length(8),
            Constraint::Length(24),
            Constraint::Length(20),
            Constraint::Length(16),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
        app.selected(),
    );
}
