//! The dead-letter pop-up: what an operator needs to judge one dead letter
//! before replaying it (destination, headers, payload, every attempt),
//! drawn over the view and scrolled with j/k.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{HEADER, centered, clean, clock, cut, opt};
use crate::app::App;

pub(super) fn draw(f: &mut Frame, app: &App, body: Rect) {
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
