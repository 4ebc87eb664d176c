//! The Overview view: delivery counts, rates and latency on the left, the
//! last minute's traffic and the queue depth as sparklines on the right.
//! Everything comes from the latest `/admin/stats` snapshot except the
//! depth chart, which the console samples itself once per refresh.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Sparkline};

use super::{HEADER, opt};
use crate::app::App;

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
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
        row("held (ordered)", d.held.to_string()),
        row("blocked keys", s.blocked_keys.to_string()).style(if s.blocked_keys > 0 {
            Style::default().fg(Color::Red)
        } else {
            Style::default()
        }),
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
