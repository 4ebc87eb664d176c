//! Checks with tools from outside the project: the PyPI `standardwebhooks`
//! library verifies signatures unchanged, and the example plugins come
//! from `plugins/dist/`.

use std::path::PathBuf;

use crate::{Received, python};

/// Verifies a delivery with the PyPI `standardwebhooks` library, unchanged.
pub fn verify_with_standardwebhooks(secret: &str, got: &Received) -> Result<(), String> {
    let headers = serde_json::json!({
        "webhook-id": got.header("webhook-id"),
        "webhook-timestamp": got.header("webhook-timestamp"),
        "webhook-signature": got.header("webhook-signature"),
    });
    let script = "import sys, json\n\
                  from standardwebhooks.webhooks import Webhook\n\
                  secret, headers = sys.argv[1], json.loads(sys.argv[2])\n\
                  body = sys.stdin.buffer.read()\n\
                  Webhook(secret).verify(body, headers)\n\
                  print('verified')\n";
    let mut child = std::process::Command::new(python())
        .args(["-c", script, secret, &headers.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python()))?;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&got.body).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verified") {
        Ok(())
    } else {
        Err(format!(
            "standardwebhooks rejected the delivery (is it installed? scripts/test.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The compile cache the plugin tests share (under target/): JavaScript
/// and Python components compile for seconds, and an entry is keyed by
/// the file's hash and the engine's settings, so it is never stale. Tests
/// of the cache itself use one of their own.
pub fn shared_plugin_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache")
}

/// A compiled example plugin from `plugins/dist/` (scripts/build-plugins.sh
/// builds them; scripts/test.sh runs it first).
pub fn plugin_wasm(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does)",
        path.display()
    );
    path
}
