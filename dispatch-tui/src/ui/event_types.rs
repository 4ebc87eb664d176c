//! The Event types view: the catalogue, dispatchd's operational types
//! among them (marked `ops`), with whether each has a schema the API
//! enforces, how many top-level properties it names, and its description.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::widgets::{Cell, Row};

use super::{cut, table_of};
use crate::app::App;

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let rows: Vec<Row> = app
        .event_types
        .iter()
        .map(|t| {
            let kind = if t.operational {
                Cell::from("ops").fg(Color::Magenta)
            } else if t.deprecated {
                Cell::from("deprecated").fg(Color::Yellow)
            } else {
                Cell::from("")
            };
            let schema = match &t.schema {
                None => "-".to_string(),
                Some(s) => match s["properties"].as_object() {
                    Some(p) => format!("yes, {} fields", p.len()),
                    None => "yes".to_string(),
                },
            };
            Row::new(vec![
                Cell::from(cut(&t.name, 36)),
                kind,
                Cell::from(schema),
                Cell::from(cut(t.description.as_deref().unwrap_or(""), 200)),
            ])
        })
        .collect();
    table_of(
        f,
        area,
        format!(
            " Event types: {} (ops: emitted by dispatchd; schemas enforced at ingest) ",
            rows.len()
        ),
        &["name", "kind", "schema", "description"],
        rows,
        &[
            Constraint::Length(36),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Min(10),
        ],
        app.selected(),
    );
}
