//! A readable difference of two JSON values: one line per field that
//! differs, named by its path (`request.payload.card.number`).

use serde_json::Value;

/// Appends to `out` a line for each place `got` differs from `want`.
pub fn diff(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => diff(&p, wv, gv, out),
                    None => out.push(format!("{p}: expected {}, missing", show(wv))),
                }
            }
            for (k, gv) in g.iter().filter(|(k, _)| !w.contains_key(*k)) {
                out.push(format!("{path}.{k}: not expected, got {}", show(gv)));
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff(&format!("{path}[{i}]"), wv, gv, out);
            }
            if w.len() != g.len() {
                out.push(format!(
                    "{path}: expected {} items, got {}",
                    w.len(),
                    g.len()
                ));
                for (i, gv) in g.iter().enumerate().skip(w.len()) {
                    out.push(format!("{path}[{i}]: not expected, got {}", show(gv)));
                }
                for (i, wv) in w.iter().enumerate().skip(g.len()) {
                    out.push(format!("{path}[{i}]: expected {}, missing", show(wv)));
                }
            }
        }
        _ if want == got => {}
        _ => out.push(format!(
            "{path}: expected {}, got {}",
            show(want),
            show(got)
        )),
    }
}

/// Compact JSON, cut to a readable length.
fn show(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_field_that_differs() {
        let mut out = Vec::new();
        diff(
            "request",
            &json!({"url": "https://a", "payload": {"card": "[redacted]", "n": 1}, "headers": {"x-a": "1"}}),
            &json!({"url": "https://a", "payload": {"card": "4242", "m": 2}, "headers": {"x-a": null}}),
            &mut out,
        );
        assert_eq!(
            out,
            [
                r#"request.headers.x-a: expected "1", got null"#,
                r#"request.payload.card: expected "[redacted]", got "4242""#,
                "request.payload.n: expected 1, missing",
                "request.payload.m: not expected, got 2",
            ]
        );
        let mut out = Vec::new();
        diff("d", &json!([1, 2]), &json!([1, 3, 4]), &mut out);
        assert_eq!(
            out,
            [
                "d[1]: expected 2, got 3",
                "d: expected 2 items, got 3",
                "d[2]: not expected, got 4"
            ]
        );
        let mut same = Vec::new();
        diff("x", &json!({"a": [1]}), &json!({"a": [1]}), &mut same);
        assert!(same.is_empty());
    }
}
