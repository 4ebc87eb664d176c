//! Standard Webhooks' asymmetric scheme, `v1a`: an ed25519 signature of
//! `{id}.{timestamp}.{body}`, base64, in `webhook-signature` as
//! `v1a,<base64>`. A subscription's key is `whsk_<base64 of its 32-byte
//! seed>` (write-only, like a secret); the key receivers verify with is
//! `whpk_<base64 of the 32-byte public key>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};

const SECRET_PREFIX: &str = "whsk_";
const PUBLIC_PREFIX: &str = "whpk_";

/// A fresh `whsk_` key from the OS's random source.
pub fn generate_key() -> String {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source is available");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(seed))
}

fn signing_key(key: &str) -> Option<SigningKey> {
    let seed: [u8; 32] = STANDARD
        .decode(key.strip_prefix(SECRET_PREFIX)?)
        .ok()?
        .try_into()
        .ok()?;
    Some(SigningKey::from_bytes(&seed))
}

/// The `whpk_` public key of a `whsk_` key; `None` for a malformed key.
pub fn public_key(key: &str) -> Option<String> {
    let k = signing_key(key)?;
    Some(format!(
        "{PUBLIC_PREFIX}{}",
        STANDARD.encode(k.verifying_key().as_bytes())
    ))
}

/// One `v1a,<base64>` entry; `None` for a malformed key (never stored:
/// keys are made here).
pub fn signature(key: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let k = signing_key(key)?;
    let mut msg = Vec::with_capacity(msg_id.len() + body.len() + 24);
    msg.extend_from_slice(msg_id.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(timestamp.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    Some(format!("v1a,{}", STANDARD.encode(k.sign(&msg).to_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn a_signature_verifies_with_the_public_key() {
        let key = generate_key();
        let public = public_key(&key).unwrap();
        let sig = signature(&key, "msg_1", 1_700_000_000, b"{\"a\":1}").unwrap();
        let raw: [u8; 32] = STANDARD
            .decode(public.strip_prefix("whpk_").unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sig: [u8; 64] = STANDARD
            .decode(sig.strip_prefix("v1a,").unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let vk = VerifyingKey::from_bytes(&raw).unwrap();
        let sig = Signature::from_bytes(&sig);
        assert!(vk.verify(b"msg_1.1700000000.{\"a\":1}", &sig).is_ok());
        assert!(vk.verify(b"msg_1.1700000001.{\"a\":1}", &sig).is_err());
        assert_ne!(generate_key(), key);
        assert_eq!(public_key("whsk_short"), None);
    }
}
