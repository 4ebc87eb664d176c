//! The `egress` column of a subscription: its signature scheme, ed25519
//! keys and endpoint credentials as one JSON object, NULL for the defaults.
//! A field this version does not know is a corrupt row, never ignored (a
//! credential or a signature silently dropped would be worse than an
//! error).

use serde::{Deserialize, Serialize};

use super::Result;
use crate::model::{Egress, EndpointAuth, OAuth2, Secret, TlsSettings};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressJson {
    signature_scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_signing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<AuthJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls: Option<TlsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy_url: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsJson {
    ca_pem: Option<String>,
    client_cert_pem: Option<String>,
    client_key_pem: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum AuthJson {
    Basic {
        username: String,
        password: String,
    },
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        audience: Option<String>,
    },
}

/// The column's value: `None` for the defaults.
pub(crate) fn column(e: &Egress) -> Option<String> {
    if *e == Egress::default() {
        return None;
    }
    let j = EgressJson {
        signature_scheme: e.signature_scheme.as_str().to_string(),
        signing_key: e.signing_key.as_ref().map(|k| k.expose().to_string()),
        previous_signing_key: e
            .previous_signing_key
            .as_ref()
            .map(|k| k.expose().to_string()),
        auth: e.auth.as_ref().map(|a| match a {
            EndpointAuth::Basic { username, password } => AuthJson::Basic {
                username: username.clone(),
                password: password.expose().to_string(),
            },
            EndpointAuth::OAuth2(o) => AuthJson::Oauth2ClientCredentials {
                token_url: o.token_url.clone(),
                client_id: o.client_id.clone(),
                client_secret: o.client_secret.expose().to_string(),
                scope: o.scope.clone(),
                audience: o.audience.clone(),
            },
        }),
        tls: e.tls.as_ref().map(|t| TlsJson {
            ca_pem: t.ca_pem.clone(),
            client_cert_pem: t.client_cert_pem.clone(),
            client_key_pem: t.client_key_pem.as_ref().map(|k| k.expose().to_string()),
        }),
        proxy_url: e.proxy_url.clone(),
    };
    Some(super::rows::to_json(&j))
}

/// Reads the column of subscription `id`.
pub(crate) fn read(id: &str, v: Option<&str>) -> Result<Egress> {
    let Some(v) = v else {
        return Ok(Egress::default());
    };
    let corrupt = |e: String| super::rows::corrupt("subscriptions", id, "egress", e);
    let j: EgressJson = serde_json::from_str(v).map_err(|e| corrupt(e.to_string()))?;
    let signature_scheme: crate::model::SignatureScheme = j
        .signature_scheme
        .parse()
        .map_err(|e| corrupt(format!("{e}")))?;
    // A scheme that signs v1a must have a key that signs: never a delivery
    // quietly sent without the signature its receiver checks.
    for k in j.signing_key.iter().chain(&j.previous_signing_key) {
        if crate::sign::ed25519::public_key(k).is_none() {
            return Err(corrupt("a signing key is not an ed25519 whsk_ key".into()));
        }
    }
    if signature_scheme.ed25519() && j.signing_key.is_none() {
        return Err(corrupt(format!("{signature_scheme} without a signing key")));
    }
    Ok(Egress {
        signature_scheme,
        signing_key: j.signing_key.map(Secret::from),
        previous_signing_key: j.previous_signing_key.map(Secret::from),
        auth: j.auth.map(|a| match a {
            AuthJson::Basic { username, password } => EndpointAuth::Basic {
                username,
                password: password.into(),
            },
            AuthJson::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                audience,
            } => EndpointAuth::OAuth2(OAuth2 {
                token_url,
                client_id,
                client_secret: client_secret.into(),
                scope,
                audience,
            }),
        }),
        tls: j.tls.map(|t| TlsSettings {
            ca_pem: t.ca_pem,
            client_cert_pem: t.client_cert_pem,
            client_key_pem: t.client_key_pem.map(Secret::from),
        }),
        proxy_url: j.proxy_url,
    })
}
