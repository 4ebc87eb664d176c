//! Drawing: one function per view, plus the header, tabs, hint bar and
//! pop-ups. Every string that came from the daemon goes through `clean`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState, Tabs, Wrap,
};

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
        View::Overview => overview(f, app, body),
        View::Deliveries => deliveries(f, app, body),
        View::DeadLetters => dead_letters(f, app, body),
        View::Endpoints => endpoints(f, app, body),
        View::Plugins => plugins(f, app, body),
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
        detail(f, app, body);
    }
    if app.help {
        help(f, body);
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

fn overview(f: &mut Frame, app: &App, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(38), Constraint::Min(20)]).areas(area);
    let Some(s) = &app.stats else {
        f.render_widget(
            Paragraph::new("waiting for the first snapshot…").block(Block::bordered()),
            area,
        );
        return;
    };
    let d = &s.deliveries;
    let row = |k: &str, v: String| Line::from(format!("{k:<18}{v:>18}"));
    let live = s.nodes.iter().filter(|n| n.live).count();
    let mut lines = vec![
        Line::from("Deliveries").style(HEADER),
        row("pending", d.pending.to_string()),
        row("in flight", d.in_flight.to_string()),
        row("scheduled", d.scheduled.to_string()),
        row("delivered", d.delivered.to_string()),
        row("dead", d.dead.to_string()),
        row("paused", d.paused.to_string()),
        row("dropped", d.dropped.to_string()),
        row(
            "oldest pending",
            s.oldest_pending_age_ms
                .map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
        ),
        Line::from(""),
        Line::from(format!("Per second, last {}s", s.rates.window_secs)).style(HEADER),
        row("ingested/s", format!("{:.1}", s.rates.ingested_per_sec)),
        row("delivered/s", format!("{:.1}", s.rates.delivered_per_sec)),
        row("failed/s", format!("{:.1}", s.rates.failed_per_sec)),
        Line::from(""),
        Line::from("Ingest → delivery").style(HEADER),
        row("p50 ms", opt(s.latency_ms.p50)),
        row("p95 ms", opt(s.latency_ms.p95)),
        row("p99 ms", opt(s.latency_ms.p99)),
        row("samples", s.latency_ms.samples.to_string()),
        Line::from(""),
        row("nodes live", format!("{live}/{}", s.nodes.len())),
        row("endpoints", s.endpoints.len().to_string()),
    ];
    lines.truncate(left.height.saturating_sub(2) as usize);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Now ")),
        left,
    );

    let [a, b, c] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(right);
    let delivered: Vec<u64> = s
        .throughput
        .iter()
        .map(|p| p.delivered.max(0) as u64)
        .collect();
    let ingested: Vec<u64> = s
        .throughput
        .iter()
        .map(|p| p.ingested.max(0) as u64)
        .collect();
    let failed_peak = s.throughput.iter().map(|p| p.failed).max().unwrap_or(0);
    spark(
        f,
        a,
        &format!(
            " Delivered/s, last 60 s (peak {}, failed peak {failed_peak}) ",
            peak(&delivered)
        ),
        &delivered,
        Color::Green,
    );
    spark(
        f,
        b,
        &format!(" Ingested/s, last 60 s (peak {}) ", peak(&ingested)),
        &ingested,
        Color::Cyan,
    );
    let depth: Vec<u64> = app.depth.iter().copied().collect();
    spark(
        f,
        c,
        &format!(
            " Queue depth, one sample per refresh (now {}) ",
            depth.last().copied().unwrap_or(0)
        ),
        &depth,
        Color::Yellow,
    );
}

fn peak(v: &[u64]) -> u64 {
    v.iter().copied().max().unwrap_or(0)
}

fn spark(f: &mut Frame, area: Rect, title: &str, data: &[u64], color: Color) {
    // The newest points at the right edge.
    let width = area.width.saturating_sub(2) as usize;
    let data = &data[data.len().saturating_sub(width)..];
    f.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(title.to_string()))
            .data(data)
            .style(Style::new().fg(color)),
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

fn deliveries(f: &mut Frame, app: &App, area: Rect) {
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
                Cell::from(cut(&a.event_type, 20)),
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

fn dead_letters(f: &mut Frame, app: &App, area: Rect) {
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
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
        app.selected(),
    );
}

fn endpoints(f: &mut Frame, app: &App, area: Rect) {
    let empty = Vec::new();
    let list = app.stats.as_ref().map_or(&empty, |s| &s.endpoints);
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
                Cell::from(clean(&e.health)).fg(color),
                Cell::from(clean(&e.circuit_state)),
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

fn plugins(f: &mut Frame, app: &App, area: Rect) {
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

fn detail(f: &mut Frame, app: &App, body: Rect) {
    let Some(d) = &app.detail else { return };
    // Inside the view's border, covering all of it.
    let area = centered(
        body,
        body.width.saturating_sub(2),
        body.height.saturating_sub(2),
    );
    let dl = &d.dead_letter;
    let mut lines = vec![
        Line::from(format!("delivery      {}", dl.delivery_id)),
        Line::from(format!(
            "event         {} ({})",
            clean(&dl.event_id),
            clean(&dl.event_type)
        )),
        Line::from(format!(
            "source        {}",
            clean(d.source.as_deref().unwrap_or("-"))
        )),
        Line::from(format!(
            "subscription  {}",
            clean(dl.subscription_id.as_deref().unwrap_or("task"))
        )),
        Line::from(format!("url           {}", clean(&dl.url))),
        Line::from(format!(
            "died          {} after run {}, {} attempts",
            clean(&dl.died_at),
            dl.run,
            dl.attempts
        )),
        Line::from(format!(
            "last error    {}",
            clean(dl.last_error.as_deref().unwrap_or("-"))
        ))
        .fg(Color::Red),
        Line::from(""),
        Line::from("Headers").style(HEADER),
    ];
    if d.headers.is_empty() {
        lines.push(Line::from("  (none configured)"));
    }
    for (k, v) in &d.headers {
        lines.push(Line::from(format!("  {}: {}", clean(k), clean(v))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from("Payload").style(HEADER));
    let pretty = serde_json::from_str::<serde_json::Value>(d.data.get())
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| d.data.get().to_string());
    for l in pretty.lines() {
        lines.push(Line::from(format!("  {}", clean(l))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from("Attempts (run.try  time  code  ms  error / answer)").style(HEADER));
    for a in &d.attempts {
        lines.push(Line::from(format!(
            "  {}.{}  {}  {}  {}  {}",
            a.run,
            a.attempt,
            clock(&a.created_at),
            opt(a.status_code),
            a.duration_ms,
            cut(
                a.error
                    .as_deref()
                    .or(a.response_body.as_deref())
                    .unwrap_or(""),
                80
            )
        )));
    }
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((app.detail_scroll, 0))
            .block(Block::bordered().title(format!(" Dead letter {} ", dl.delivery_id))),
        area,
    );
}

const KEYS: &[(&str, &str)] = &[
    ("1-5, Tab, S-Tab", "switch view"),
    ("j/k, ↑/↓, g/G", "move"),
    ("/", "filter: sub:ID type:T status:ok|failed|CODE, words"),
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

fn help(f: &mut Frame, body: Rect) {
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
