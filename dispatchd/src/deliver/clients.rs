//! The HTTP clients deliveries go out on: one shared client, and one per
//! distinct TLS setting (a private CA, a client certificate), made at first
//! use and kept so its pool and HTTP/2 sessions survive. Every client
//! resolves names through the SSRF guard and follows no redirect.

use std::sync::Arc;
use std::time::Duration;

use crate::model::TlsSettings;
use crate::ssrf::{Guard, GuardedResolver};

/// A CONNECT proxy a delivery goes out through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub url: String,
    /// `delivery.proxy_url`, set by the operator: its own address is not
    /// guarded. A subscription's is.
    pub trusted: bool,
}

/// Most bytes of each PEM field.
pub const MAX_PEM_BYTES: usize = 65536;

/// What every client to endpoints shares. With `guard`, every name is
/// resolved through the SSRF guard, so only allowed addresses are ever
/// dialled; without (a client of the configured proxy, which is trusted and
/// the only host that client dials), the system resolver is used.
pub(super) fn builder(guard: Option<&Arc<Guard>>, max_idle: usize) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder();
    if let Some(guard) = guard {
        b = b.dns_resolver(Arc::new(GuardedResolver {
            guard: guard.clone(),
        }));
    }
    // A 3xx is a failure: following it could reach anywhere.
    b.redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(max_idle)
        .tcp_nodelay(true)
}

/// `b` trusting the settings' CA (besides the system roots) and
/// presenting their client certificate.
pub(super) fn with_tls(
    mut b: reqwest::ClientBuilder,
    t: &TlsSettings,
) -> Result<reqwest::ClientBuilder, String> {
    if let Some(ca) = &t.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
            .map_err(|e| format!("tls.ca_pem: {e}"))?;
        if certs.is_empty() {
            return Err("tls.ca_pem: no PEM certificate in it".into());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    match (&t.client_cert_pem, &t.client_key_pem) {
        (None, None) => {}
        (Some(_), None) => return Err("tls.client_key_pem: required with client_cert_pem".into()),
        (None, Some(_)) => return Err("tls.client_cert_pem: required with client_key_pem".into()),
        (Some(cert), Some(key)) => {
            let certs = reqwest::Certificate::from_pem_bundle(cert.as_bytes())
                .map_err(|e| format!("tls.client_cert_pem: {e}"))?;
            if certs.is_empty() {
                return Err("tls.client_cert_pem: no PEM certificate in it".into());
            }
            let pem = format!("{}\n{cert}", key.expose());
            let id = reqwest::Identity::from_pem(pem.as_bytes())
                .map_err(|e| format!("tls.client_key_pem: {e}"))?;
            b = b.identity(id);
        }
    }
    Ok(b)
}

/// Checks TLS settings when a subscription is written: each PEM parses,
/// the CA makes a trust store, and the key is the certificate's.
pub fn check_tls(t: &TlsSettings) -> Result<(), String> {
    // Shown on every read: a key pasted into a certificate field would be.
    for (field, v) in [
        ("ca_pem", &t.ca_pem),
        ("client_cert_pem", &t.client_cert_pem),
    ] {
        if let Some(v) = v
            && v.contains("PRIVATE KEY")
        {
            return Err(format!(
                "tls.{field}: holds a private key; only client_key_pem may (and it is never shown)"
            ));
        }
    }
    for (field, v) in [
        ("ca_pem", t.ca_pem.as_deref()),
        ("client_cert_pem", t.client_cert_pem.as_deref()),
        (
            "client_key_pem",
            t.client_key_pem.as_ref().map(|k| k.expose()),
        ),
    ] {
        if v.is_some_and(|v| v.len() > MAX_PEM_BYTES) {
            return Err(format!("tls.{field} must be at most {MAX_PEM_BYTES} bytes"));
        }
    }
    let ca_only = TlsSettings {
        client_cert_pem: None,
        client_key_pem: None,
        ..t.clone()
    };
    with_tls(reqwest::Client::builder(), &ca_only)?
        .build()
        .map_err(|e| format!("tls.ca_pem: {}", source_chain(&e)))?;
    with_tls(reqwest::Client::builder(), t)?
        .build()
        .map_err(|e| {
            format!(
                "tls.client_key_pem: not usable with client_cert_pem: {}",
                source_chain(&e)
            )
        })?;
    Ok(())
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let chain: Vec<String> = std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect();
    chain.join(": ")
}

/// The cache key of a client: a hash of its TLS settings and proxy, so
/// no PEM or key is kept twice.
pub(super) fn client_key(t: Option<&TlsSettings>, proxy: Option<&Proxy>) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        t.and_then(|t| t.ca_pem.as_deref()),
        t.and_then(|t| t.client_cert_pem.as_deref()),
        t.and_then(|t| t.client_key_pem.as_ref().map(|k| k.expose())),
        proxy.map(|p| p.url.as_str()),
        proxy.filter(|p| p.trusted).map(|_| "trusted"),
    ] {
        h.update(part.unwrap_or("").as_bytes());
        h.update([0u8, u8::from(part.is_some())]);
    }
    h.finalize().into()
}
