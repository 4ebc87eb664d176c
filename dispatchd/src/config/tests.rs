//! The configuration's tests: the documented file matches the defaults,
//! layering, and every error names its key.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn documented_file_matches_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dispatch.toml");
    let from_file = Config::load(
        Some(&path),
        &env(&[("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]")]),
        false,
    )
    .expect("dispatch.toml loads");
    let mut expected = Config::default();
    expected.api.keys = vec!["0123456789abcdef".into()];
    assert_eq!(from_file, expected);
}

#[test]
fn refuses_to_start_without_keys_unless_dev() {
    let err = Config::load(None, &[], false).unwrap_err().to_string();
    assert!(err.contains("api.keys") && err.contains("--dev"), "{err}");
    let dev = Config::default().into_dev();
    dev.validate().unwrap();
}

#[test]
fn env_overrides_and_names_bad_keys() {
    let cfg = Config::load(
        None,
        &env(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("ADDR", ":9000"),
            ("DISPATCH_QUEUE__CLAIM_BATCH", "50"),
            ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
        ]),
        false,
    )
    .unwrap();
    assert_eq!(cfg.database.url.expose(), "postgres://u@h/db");
    assert_eq!(cfg.listen_addr().unwrap().port(), 9000);
    assert_eq!(cfg.queue.claim_batch, 50);

    let err = Config::load(
        None,
        &env(&[
            ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
            ("DISPATCH_QUEUE__CLAIM_BATCH", "lots"),
        ]),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("queue.claim_batch"), "{err}");

    let err = Config::load(
        None,
        &env(&[
            ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
            ("DISPATCH_QUEUE__CLAIM_BATCH", "0"),
        ]),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("queue.claim_batch"), "{err}");

    let err = Config::load(
        None,
        &env(&[
            ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
            ("DISPATCH_QUEUE__LEESE_SECS", "5"),
        ]),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("leese_secs"), "{err}");
}

#[test]
fn errors_never_echo_secrets() {
    // Brackets forgotten: a string where a list is expected.
    let err = Config::load(
        None,
        &env(&[("DISPATCH_API__KEYS", "super-secret-producer-key")]),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("api.keys"), "{err}");
    assert!(!err.contains("super-secret-producer-key"), "{err}");
}

#[test]
fn bad_file_value_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.toml");
    std::fs::write(&path, "[delivery]\ntimeout_ms = \"soon\"\n").unwrap();
    let err = Config::load(Some(&path), &[], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("delivery.timeout_ms"), "{err}");
    let err = Config::load(Some(&dir.path().join("nope.toml")), &[], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn dev_mode_binds_loopback() {
    let mut cfg = Config::default().into_dev();
    cfg.server.addr = "0.0.0.0:8080".into();
    assert!(cfg.listen_addr().unwrap().ip().is_loopback());
}

/// No secret can reach a log line or a panic message through `Debug`: the
/// keys, the tokens and the database URL (its password) print `***`.
#[test]
fn debug_of_a_loaded_config_shows_no_secret() {
    let cfg = Config::load(
        None,
        &env(&[
            (
                "DATABASE_URL",
                "postgres://dispatch:pg-password-1234@db/dispatch",
            ),
            ("DISPATCH_API__KEYS", "[\"producer-key-0123456789\"]"),
            ("DISPATCH_API__HMAC_SECRETS", "[\"hmac-secret-0123456789\"]"),
            ("DISPATCH_ADMIN__TOKENS", "[\"admin-token-0123456789\"]"),
            ("DISPATCH_METRICS__TOKEN", "metrics-token-0123456789"),
        ]),
        false,
    )
    .unwrap();
    let shown = format!("{cfg:?} {cfg:#?}");
    for secret in [
        "pg-password-1234",
        "producer-key-0123456789",
        "hmac-secret-0123456789",
        "admin-token-0123456789",
        "metrics-token-0123456789",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("***"));
    // The values are all there for the code that needs them.
    assert_eq!(cfg.admin.tokens[0].expose(), "admin-token-0123456789");
}
