//! The Endpoints view: every subscription's tenant, health, circuit and
//! backlog from the stats snapshot (narrowed by the `/` filter, such as
//! `tenant:acme`): the rows the pause, resume, disable and enable keys act
//! on. Health is coloured, and the word is always there too.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::widgets::{Cell, Row};

use super::{clean, cut, table_of};
use crate::app::App;

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let list = app.visible_endpoints();
    let rows: Vec<Row> = list
        .iter()
        .map(|e| {
            let color = match e.health.as_str() {
                "healthy" => Color::Green,
                "idle" => Color::Gray,
                "failing" | "half_open" | "paused" => Color::Yellow,
                _ => Color::Red,
            };
            Row::new(vec![
                Cell::from(cut(&e.subscription_id, 20)),
                Cell::from(cut(e.tenant_id.as_deref().unwrap_or("-"), 14)),
                Cell::from(clean(&e.health)).fg(color),
                Cell::from(e.circuit_state.as_str()),
                Cell::from(e.consecutive_failures.to_string()),
                Cell::from(e.rate_limit.map_or("none".into(), |r| format!("{r}/s"))),
                Cell::from(e.backlog.to_string()),
                Cell::from(e.paused.to_string()),
                Cell::from(e.dead.to_string()),
                Cell::from(e.delivered_last_minute.to_string()),
                Cell::from(e.failed_last_minute.to_string()),
                Cell::from(cut(&e.url, 60)),
            ])
        })
        .collect();
    table_of(
        f,
        area,
        format!(" Endpoints: {} ", list.len()),
        &[
            "subscription",
            "tenant",
            "health",
            "circuit",
            "fails",
            "limit",
            "backlog",
            "parked",
            "dead",
            "ok/1m",
            "err/1m",
            "url",
        ],
        rows,
        &[
            Constraint::Length(20),
            Constraint::Length(14),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
        app.selected(),
    );
}
