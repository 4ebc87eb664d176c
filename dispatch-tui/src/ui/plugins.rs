//! The Plugins view: call counts summed over every node (from the stats
//! snapshot), joined by name with what the answering node has loaded
//! (world, hash, load time) from `/admin/plugins`. A plugin that node has
//! not loaded shows `-` there rather than disappearing.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row};

use super::{clean, clock, cut, table_of};
use crate::app::App;

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let empty = Vec::new();
    let list = app.stats.as_ref().map_or(&empty, |s| &s.plugins);
    let rows: Vec<Row> = list
        .iter()
        .map(|p| {
            let loaded = app
                .plugins
                .as_ref()
                .and_then(|l| l.plugins.iter().find(|x| x.name == p.name));
            Row::new(vec![
                Cell::from(cut(&p.name, 20)),
                Cell::from(loaded.map_or("-".into(), |l| clean(&l.world))),
                Cell::from(p.invocations.to_string()),
                Cell::from(p.errors.to_string()),
                Cell::from(format!("{:.1}", p.mean_us)),
                Cell::from(loaded.map_or("-".into(), |l| cut(&l.hash, 13))),
                Cell::from(loaded.map_or("-".into(), |l| clock(&l.loaded_at))),
            ])
        })
        .collect();
    table_of(
        f,
        area,
        format!(" Plugins: {} (calls summed over every node) ", list.len()),
        &[
            "name", "world", "calls", "errors", "mean µs", "hash", "loaded",
        ],
        rows,
        &[
            Constraint::Length(20),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Length(8),
        ],
        app.selected(),
    );
}
