//! Webhook signing: Standard Webhooks and the Dispatch seed's header.
//!
//! `webhook-signature` is `v1,<base64 HMAC-SHA256 of "{id}.{ts}.{body}">`,
//! one entry per active secret; `X-Dispatch-Signature` is
//! `sha256=<hex HMAC-SHA256 of the body>`. A `whsec_<base64>` secret is
//! decoded as Standard Webhooks says; any other string is its own bytes.
//! `ed25519` is the asymmetric scheme, `v1a`.

pub mod ed25519;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key bytes of a secret.
///
/// ```
/// use dispatchd::sign::secret_key;
/// // Standard Webhooks secrets are base64 after the prefix...
/// assert_eq!(secret_key("whsec_aGVsbG8="), b"hello");
/// // ...anything else is used as it is.
/// assert_eq!(secret_key("my-secret-key"), b"my-secret-key");
/// ```
pub fn secret_key(secret: &str) -> Vec<u8> {
    if let Some(b64) = secret.strip_prefix("whsec_")
        && let Ok(bytes) = STANDARD.decode(b64)
        && !bytes.is_empty()
    {
        return bytes;
    }
    secret.as_bytes().to_vec()
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// One Standard Webhooks signature entry: `v1,<base64>`.
pub fn standard_signature(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()))
}

/// The `webhook-signature` header value: one entry per secret, space-separated.
pub fn standard_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| standard_signature(&secret_key(s), msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hex HMAC-SHA256 of a body.
pub fn hex_hmac(key: &[u8], body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// The `X-Dispatch-Signature` header value.
///
/// A receiver checks it by computing the same HMAC over the raw body:
///
/// ```
/// use dispatchd::sign::{dispatch_header, verify_hex_hmac};
/// let body = br#"{"id":"evt_123"}"#;
/// let header = dispatch_header("my-secret-key", body);
/// assert!(header.starts_with("sha256="));
/// assert!(verify_hex_hmac(b"my-secret-key", body, &header));
/// ```
pub fn dispatch_header(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex_hmac(&secret_key(secret), body))
}

/// Checks a hex HMAC-SHA256 in constant time (DispatchGO request signing).
pub fn verify_hex_hmac(key: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex.trim().trim_start_matches("sha256=")) else {
        return false;
    };
    let mut m = mac(key);
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

/// A fresh `whsec_` secret: 24 random bytes, as Standard Webhooks suggests.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// A secret as the API shows it after creation: never the secret itself.
pub fn mask(secret: &str) -> String {
    if secret.starts_with("whsec_") {
        "whsec_********".into()
    } else {
        "********".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let sig = standard_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn non_whsec_secrets_are_raw_bytes() {
        assert_eq!(secret_key("my-secret-key"), b"my-secret-key");
        // Not valid base64 after the prefix: the whole string is the key.
        assert_eq!(
            secret_key("whsec_test_secret_123"),
            b"whsec_test_secret_123"
        );
    }

    #[test]
    fn dispatch_signature_round_trips() {
        let h = dispatch_header("my-secret-key", b"{}");
        assert!(h.starts_with("sha256="));
        assert!(verify_hex_hmac(b"my-secret-key", b"{}", &h));
        assert!(!verify_hex_hmac(b"other", b"{}", &h));
        assert!(!verify_hex_hmac(b"my-secret-key", b"{}", "zz"));
    }

    #[test]
    fn generated_secrets_decode() {
        let s = generate_secret();
        assert_eq!(secret_key(&s).len(), 24);
        assert_ne!(s, generate_secret());
        assert_eq!(mask(&s), "whsec_********");
    }
}
