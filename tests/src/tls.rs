//! Certificates for TLS tests, made with rcgen: a private CA, a server
//! certificate for 127.0.0.1 signed by it, client certificates, and the
//! rustls server configurations a `Receiver` serves HTTPS with (optionally
//! demanding a client certificate from a given CA).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

/// A private certificate authority.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

/// A certificate and its key, as PEM (what a subscription's `tls` takes).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("a CA certificate");
        Self { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    fn issue(&self, names: Vec<String>, purpose: ExtendedKeyUsagePurpose) -> Issued {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "dispatch test");
        params.extended_key_usages = vec![purpose];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("a signed certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self) -> Issued {
        self.issue(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate.
    pub fn client(&self) -> Issued {
        self.issue(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// HTTPS with `server`'s certificate, HTTP/2 and HTTP/1.1 offered
    /// (ALPN); with `clients`, a client certificate from that CA is
    /// required.
    pub fn server_config(&self, clients: Option<&TestCa>) -> Arc<rustls::ServerConfig> {
        let server = self.server();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.cert.der().clone()).expect("a root");
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .expect("a client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(
                vec![server.cert_der],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der)),
            )
            .expect("a server configuration");
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}
