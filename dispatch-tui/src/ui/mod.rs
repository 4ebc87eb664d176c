//! Drawing, generic over ratatui's backend. `draw` lays out the screen
//! (header, tabs, body, message line, hint bar) and hands the body to the
//! current view's module; the pop-ups draw over it. The helpers every view
//! shares live here, `clean` first: every string that came from the daemon
//! goes through it, so nothing a receiver sends can drive the terminal.

mod dead_letters;
mod deliveries;
mod detail;
mod endpoints;
mod event_types;
mod help;
mod overview;
mod plugins;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Table, TableState, Tabs, Wrap};

use crate::app::{App, Conn, View};

/// Strips control characters (escape sequences included) from text the
/// daemon or a receiver supplied, so it cannot drive the terminal.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// `HH:MM:SS` of an RFC 3339 time.
fn clock(t: &str) -> String {
    clean(t.get(11..19).unwrap_or(t))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn cut(s: &str, n: usize) -> String {
    let s = clean(s);
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);
const HEADER: Style = Style::new().add_modifier(Modifier::BOLD);

pub fn draw(f: &mut Frame, app: &App) {
    let [top, tabs, body, message, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, app, top);
    let titles: Vec<String> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()))
        .collect();
    let current = View::ALL.iter().position(|v| *v == app.view).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(current)
            .highlight_style(Style::new().bold().fg(Color::Cyan)),
        tabs,
    );
    match app.view {
        View::Overview => overview::draw(f, app, body),
        View::Deliveries => deliveries::draw(f, app, body),
        View::DeadLetters => dead_letters::draw(f, app, body),
        View::Endpoints => endpoints::draw(f, app, body),
        View::Plugins => plugins::draw(f, app, body),
        View::EventTypes => event_types::draw(f, app, body),
    }
    let line = match (&app.editing, &app.message) {
        (Some(text), _) => Line::from(vec![Span::raw("/"), Span::raw(clean(text)), "█".into()]),
        (None, Some(Ok(m))) => Line::from(clean(m)).fg(Color::Green),
        (None, Some(Err(e))) => Line::from(format!("error: {}", clean(e))).fg(Color::Red),
        (None, None) if !app.filter_text.is_empty() => {
            Line::from(format!("filter: {} (Esc clears)", clean(&app.filter_text)))
        }
        _ => Line::default(),
    };
    f.render_widget(Paragraph::new(line), message);
    f.render_widget(
        Paragraph::new(app.hints()).style(Style::new().fg(Color::Black).bg(Color::Gray)),
        hints,
    );
    if app.detail.is_some() {
        detail::draw(f, app, body);
    }
    if app.help {
        help::draw(f, body);
    }
    if let Some(c) = &app.confirm {
        let area = centered(body, 64, 5);
        f.render_widget(Clear, area);
        f.render_widget(
            Paragraph::new(vec![
                Line::from(clean(&c.prompt)),
                Line::from(""),
                Line::from("y yes · n no"),
            ])
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Confirm ").fg(Color::Yellow)),
            area,
        );
    }
}

fn header(f: &mut Frame, app: &App, area: Rect) {
    let (state, color) = match &app.conn {
        Conn::Connecting => ("connecting…".to_string(), Color::Yellow),
        Conn::Connected => ("connected".to_string(), Color::Green),
        Conn::Disconnected(e) => (format!("disconnected, retrying ({})", clean(e)), Color::Red),
    };
    let backend = app.stats.as_ref().map_or("", |s| s.backend.as_str());
    let refresh = format!(
        "refresh {:.2}s{}",
        app.refresh.as_secs_f64(),
        if app.paused { " FROZEN" } else { "" }
    );
    f.render_widget(
        Paragraph::new(Line::from(vec![
            " dispatch ".bold().fg(Color::Cyan),
            Span::raw(format!("{} {} · ", clean(&app.url), clean(backend))),
            Span::styled(state, Style::new().fg(color).bold()),
            Span::raw(format!(" · {refresh}")),
        ])),
        area,
    );
}

fn table_of<'a>(
    f: &mut Frame,
    area: Rect,
    title: String,
    header: &[&'a str],
    rows: Vec<Row<'a>>,
    widths: &[Constraint],
    selected: usize,
) {
    let empty = rows.is_empty();
    let table = Table::new(rows, widths.to_vec())
        .header(Row::new(header.to_vec()).style(HEADER))
        .row_highlight_style(SELECTED)
        // Visible without colour too (a plain capture of the screen).
        .highlight_symbol("› ")
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always)
        .block(Block::bordered().title(title));
    let mut state = TableState::default().with_selected((!empty).then_some(selected));
    f.render_stateful_widget(table, area, &mut state);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_escape_sequences() {
        assert_eq!(clean("a\x1b[2Jb\x07c\u{9b}d\te"), "a?[2Jb?c?d e");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
