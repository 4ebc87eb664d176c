//! How deliveries leave: `signatures` (Standard Webhooks v1a with ed25519,
//! v1 and v1a together, key rotation), `auth` (credentials presented to
//! the endpoint, write-only), `oauth2` (client-credentials tokens), `proxy` (CONNECT proxies and the
//! SSRF guard in front of them) and `tls` (private CAs and client
//! certificates, against HTTPS receivers with certificates made per test).

mod auth;
mod oauth2;
mod proxy;
mod signatures;
mod tls;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dispatch_tests::Received;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// The `v1a` entries of a delivery's `webhook-signature` that verify with
/// `public_key` (`whpk_…`), checked with the ed25519-dalek crate over
/// `{id}.{timestamp}.{body}` as Standard Webhooks says.
pub(super) fn v1a_verifies(public_key: &str, r: &Received) -> bool {
    let raw: [u8; 32] = STANDARD
        .decode(public_key.strip_prefix("whpk_").expect("whpk_ prefix"))
        .expect("base64")
        .try_into()
        .expect("32 bytes");
    let key = VerifyingKey::from_bytes(&raw).expect("a public key");
    let mut msg = format!(
        "{}.{}.",
        r.header("webhook-id"),
        r.header("webhook-timestamp")
    )
    .into_bytes();
    msg.extend_from_slice(&r.body);
    entries(r, "v1a").iter().any(|sig| {
        let Ok(bytes) = STANDARD.decode(sig) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes) else {
            return false;
        };
        key.verify(&msg, &Signature::from_bytes(&bytes)).is_ok()
    })
}

/// The signatures of one version in `webhook-signature`.
pub(super) fn entries(r: &Received, version: &str) -> Vec<String> {
    r.header("webhook-signature")
        .split(' ')
        .filter_map(|e| e.split_once(','))
        .filter(|(v, _)| *v == version)
        .map(|(_, s)| s.to_string())
        .collect()
}
