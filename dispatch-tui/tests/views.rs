//! Every view drawn into ratatui's `TestBackend` from fixed data and kept
//! as an insta snapshot, and the key flows that change state.

use std::time::Duration;

use dispatch_tui::app::{App, Cmd, Conn, Msg, View};
use dispatch_wire::{
    AdminStats, AttemptEvent, DeadLetterDetail, DeadLetterView, EventTypeView, PluginList,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

fn stats() -> AdminStats {
    let throughput: Vec<_> = (0..60)
        .map(|i| json!({"at": 1_790_000_000 + i, "ingested": (i % 7) * 10, "delivered": (i % 5) * 12, "failed": i % 3}))
        .collect();
    serde_json::from_value(json!({
        "generated_at": "2026-11-24T12:00:00.000Z",
        "backend": "postgres",
        "deliveries": {"pending": 12, "in_flight": 4, "scheduled": 3, "delivered": 1234,
                        "dead": 3, "paused": 2, "dropped": 1, "held": 9},
        "blocked_keys": 1,
        "oldest_pending_age_ms": 1500,
        "rates": {"window_secs": 60, "ingested_per_sec": 30.0, "delivered_per_sec": 24.5,
                  "failed_per_sec": 1.0},
        "throughput": throughput,
        "latency_ms": {"samples": 1470, "p50": 8, "p95": 21, "p99": 40},
        "endpoints": [
            {"subscription_id": "sub_orders", "url": "https://orders.example.com/hook",
             "status": "active", "circuit_state": "closed", "consecutive_failures": 0,
             "rate_limit": 50, "last_success_at": "2026-11-24T11:59:59.000Z",
             "disabled_reason": null, "health": "healthy", "backlog": 7, "paused": 0,
             "dead": 0, "delivered_last_minute": 1400, "failed_last_minute": 0},
            {"subscription_id": "sub_crm", "tenant_id": "acme",
             "url": "https://crm.example.com/in\u{1b}[31mred",
             "status": "active", "circuit_state": "open", "consecutive_failures": 12,
             "rate_limit": null, "last_success_at": null, "disabled_reason": null,
             "health": "open", "backlog": 0, "paused": 2, "dead": 3,
             "delivered_last_minute": 0, "failed_last_minute": 60}
        ],
        "plugins": [
            {"name": "redact", "invocations": 1400, "errors": 2, "mean_us": 29.8}
        ],
        "nodes": [
            {"id": "node-a", "started_at": "2026-11-24T10:00:00.000Z",
             "last_seen": "2026-11-24T11:59:58.000Z", "live": true},
            {"id": "node-b", "started_at": "2026-11-24T10:00:00.000Z",
             "last_seen": "2026-11-24T11:00:00.000Z", "live": false}
        ]
    }))
    .unwrap()
}

fn dead(n: i64) -> DeadLetterView {
    serde_json::from_value(json!({
        "delivery_id": 100 + n, "event_id": format!("evt_{n}"), "event_type": "order.created",
        "subscription_id": "sub_crm", "tenant_id": "acme", "url": "https://crm.example.com/in",
        "attempts": 5,
        "run": 1, "last_status_code": 500, "last_error": "the receiver answered 500\u{7}",
        "died_at": format!("2026-11-24T11:58:0{n}.000Z"), "created_at": "2026-11-24T11:50:00.000Z"
    }))
    .unwrap()
}

fn attempt(n: i64, ok: bool) -> AttemptEvent {
    serde_json::from_value(json!({
        "id": n, "delivery_id": 100 + n, "event_id": format!("evt_{n}"),
        "event_type": if ok { "order.created" } else { "invoice.paid" },
        "subscription_id": if ok { "sub_orders" } else { "sub_crm" }, "run": 1,
        "attempt": if ok { 1 } else { 3 }, "url": "https://x.example.com/",
        "status_code": if ok { 200 } else { 503 },
        "error": if ok { None } else { Some("the receiver answered 503") },
        "duration_ms": 12 + n, "at": format!("2026-11-24T11:59:5{n}.000Z"), "ok": ok
    }))
    .unwrap()
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn app() -> App {
    let mut app = App::new("http://127.0.0.1:8080", Duration::from_secs(1));
    for depth in [5, 9, 20, 14, 19] {
        let mut s = stats();
        s.deliveries.pending = depth;
        app.update(Msg::Stats(Ok(s)));
    }
    app.update(Msg::DeadLetters(Ok((1..=3).map(dead).collect())));
    for (n, ok) in [(1, true), (2, false), (3, true)] {
        app.update(Msg::Attempt(attempt(n, ok)));
    }
    app
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(130, 34)).unwrap();
    t.draw(|f| dispatch_tui::ui::draw(f, app)).unwrap();
    t.backend().to_string()
}

#[test]
fn overview() {
    insta::assert_snapshot!(screen(&app()));
}

#[test]
fn deliveries_filtered_by_status() {
    let mut app = app();
    app.update(key('2'));
    insta::assert_snapshot!("deliveries", screen(&app));
    app.update(key('/'));
    for c in "status:failed".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Enter));
    assert_eq!(app.visible_attempts().len(), 1);
    assert_eq!(app.visible_attempts()[0].event_id, "evt_2");
    insta::assert_snapshot!("deliveries_failed", screen(&app));
}

#[test]
fn dead_letters_mark_replay_with_confirmation() {
    let mut app = app();
    let cmds = app.update(key('3'));
    assert_eq!(app.view, View::DeadLetters);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Cmd::FetchDeadLetters { .. }))
    );
    app.update(key(' '));
    app.update(key(' '));
    insta::assert_snapshot!("dead_letters", screen(&app));
    assert!(
        app.update(key('r')).is_empty(),
        "nothing before confirmation"
    );
    insta::assert_snapshot!("dead_letters_confirm", screen(&app));
    let cmds = app.update(key('y'));
    assert_eq!(
        cmds,
        [Cmd::DeadLetters("replay", json!({"ids": [101, 102]}))]
    );
    // Any other key cancels.
    app.update(key('R'));
    assert!(app.update(key('n')).is_empty());
    // All filtered goes to the server as a filter.
    app.update(key('/'));
    for c in "sub:sub_crm".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Enter));
    app.update(key('X'));
    assert_eq!(
        app.update(key('y')),
        [Cmd::DeadLetters(
            "purge",
            json!({"filter": {"subscription_id": "sub_crm", "tenant_id": null, "event_type": null}})
        )]
    );
}

#[test]
fn dead_letter_inspection() {
    let mut app = app();
    app.update(key('3'));
    assert_eq!(app.update(code(KeyCode::Enter)), [Cmd::FetchDetail(101)]);
    let detail: DeadLetterDetail = serde_json::from_value(json!({
        "dead_letter": serde_json::to_value(dead(1)).unwrap(),
        "source": "shop",
        "data": {"order": 42, "note": "\u{1b}]0;pwned\u{7}"},
        "headers": {"X-Api-Key": "********"},
        "attempts": [
            {"delivery_id": 101, "subscription_id": "sub_crm", "url": "https://crm.example.com/in",
             "run": 1, "attempt": 1, "status_code": 500, "error": "the receiver answered 500",
             "duration_ms": 31, "response_body": "oops", "created_at": "2026-11-24T11:57:00.000Z"},
            {"delivery_id": 101, "subscription_id": "sub_crm", "url": "https://crm.example.com/in",
             "run": 1, "attempt": 2, "status_code": null, "error": "connection refused",
             "duration_ms": 2, "response_body": null, "created_at": "2026-11-24T11:58:01.000Z"}
        ]
    }))
    .unwrap();
    app.update(Msg::Detail(Ok(detail)));
    let s = screen(&app);
    assert!(!s.contains('\u{1b}'));
    insta::assert_snapshot!("dead_letter_detail", s);
    app.update(key('r'));
    assert_eq!(
        app.update(key('y')),
        [Cmd::DeadLetters("replay", json!({"ids": [101]}))]
    );
    // A view key closes the pop-up and switches.
    let other = json!({"dead_letter": serde_json::to_value(dead(2)).unwrap(), "source": null,
                       "data": {}, "headers": {}, "attempts": []});
    app.update(Msg::Detail(Ok(serde_json::from_value(other).unwrap())));
    app.update(key('4'));
    assert!(app.detail.is_none());
    assert_eq!(app.view, View::Endpoints);
}

#[test]
fn endpoints_and_actions() {
    let mut app = app();
    app.update(key('4'));
    let s = screen(&app);
    assert!(!s.contains('\u{1b}'), "escape sequences are stripped");
    insta::assert_snapshot!("endpoints", s);
    app.update(key('j'));
    assert_eq!(
        app.update(key('p')),
        [Cmd::Endpoint("sub_crm".into(), "pause")]
    );
    assert_eq!(
        app.update(key('u')),
        [Cmd::Endpoint("sub_crm".into(), "resume")]
    );
    assert!(app.update(key('d')).is_empty(), "disable asks first");
    assert_eq!(
        app.update(key('y')),
        [Cmd::Endpoint("sub_crm".into(), "disable")]
    );
    // One tenant's endpoints: the keys act on the rows shown.
    app.update(key('/'));
    for c in "tenant:acme".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Enter));
    let shown: Vec<&str> = app
        .visible_endpoints()
        .iter()
        .map(|e| e.subscription_id.as_str())
        .collect();
    assert_eq!(shown, ["sub_crm"]);
    insta::assert_snapshot!("endpoints_of_a_tenant", screen(&app));
    assert_eq!(
        app.update(key('p')),
        [Cmd::Endpoint("sub_crm".into(), "pause")]
    );
    // Its dead letters are fetched with the tenant as a server filter.
    let cmds = app.update(key('3'));
    assert!(cmds.contains(&Cmd::FetchDeadLetters {
        subscription_id: None,
        tenant_id: Some("acme".into()),
        event_type: None,
    }));
}

#[test]
fn plugins_view_and_reload() {
    let mut app = app();
    app.update(key('5'));
    let list: PluginList = serde_json::from_value(json!({"plugins": [{
        "name": "redact", "world": "transformer", "path": "plugins/dist/redact_fields.wasm",
        "hash": "9f2c1e0d4b5a69788776655443322110", "size_bytes": 84000,
        "loaded_at": "2026-11-24T10:00:01.000Z", "invocations": 700, "errors": 1,
        "mean_us": 30.1, "warm": false}]}))
    .unwrap();
    app.update(Msg::Plugins(Ok(list)));
    insta::assert_snapshot!("plugins", screen(&app));
    assert_eq!(app.update(key('r')), [Cmd::ReloadPlugins]);
}

#[test]
fn help_and_disconnection() {
    let mut app = app();
    app.update(key('?'));
    insta::assert_snapshot!("help", screen(&app));
    app.update(key('x'));
    assert!(!app.help, "any key closes help");
    app.update(Msg::Stats(Err("connection refused".into())));
    assert_eq!(app.conn, Conn::Disconnected("connection refused".into()));
    let s = screen(&app);
    assert!(
        s.contains("disconnected, retrying (connection refused)"),
        "{s}"
    );
    // The last figures stay on screen; the next good answer reconnects.
    assert!(s.contains("1234"));
    app.update(Msg::Stats(Ok(stats())));
    assert_eq!(app.conn, Conn::Connected);
}

#[test]
fn refresh_is_adjustable_and_pausable() {
    let mut app = app();
    app.update(key('-'));
    assert_eq!(app.refresh, Duration::from_millis(500));
    app.update(key('+'));
    app.update(key('+'));
    assert_eq!(app.refresh, Duration::from_secs(2));
    app.update(key('F'));
    assert!(app.update(Msg::Tick).is_empty(), "frozen: no refresh");
    app.update(key('F'));
    assert_eq!(app.update(Msg::Tick), [Cmd::FetchStats]);
    assert!(!app.quit);
    assert_eq!(app.update(key('q')), [Cmd::Quit]);
}

#[test]
fn event_types_view_and_operational_events_in_the_tail() {
    let mut app = app();
    let mut op = attempt(4, true);
    op.event_type = "dispatch.delivery.dead".into();
    app.update(Msg::Attempt(op));
    let cmds = app.update(key('6'));
    assert!(cmds.contains(&Cmd::FetchEventTypes), "{cmds:?}");
    let types: Vec<EventTypeView> = serde_json::from_value(json!([
        {"name": "dispatch.delivery.dead", "description": "A delivery used up its attempts.",
         "schema": {"type": "object", "properties": {"event_id": {}, "attempts": {}}},
         "deprecated": false, "example": null, "operational": true,
         "created_at": "2026-12-01T00:00:00.000Z", "updated_at": "2026-12-01T00:00:00.000Z"},
        {"name": "order.created", "description": "An order was placed",
         "schema": {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}},
         "deprecated": false, "example": null, "operational": false,
         "created_at": "2026-12-01T00:00:00.000Z", "updated_at": "2026-12-01T00:00:00.000Z"},
        {"name": "order.legacy", "description": null, "schema": null,
         "deprecated": true, "example": null, "operational": false,
         "created_at": "2026-12-01T00:00:00.000Z", "updated_at": "2026-12-01T00:00:00.000Z"}
    ]))
    .unwrap();
    app.update(Msg::EventTypes(Ok(types)));
    insta::assert_snapshot!("event_types", screen(&app));
    app.update(key('2'));
    let tail = screen(&app);
    assert!(tail.contains("◆ dispatch.deliver"), "{tail}");
    assert_eq!(tail.matches('◆').count(), 1, "{tail}");
}
