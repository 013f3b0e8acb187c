//! A TLS client for the tests that look at the certificate a server presents (`tests/tls.rs`,
//! `tests/acme.rs`). Small and on its own, so a test can take it without the rest of `support`.

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// A client that trusts exactly these certificates, with a full handshake on every connection:
/// a resumed session reports the certificate of the session it resumes, not the one served now.
pub fn connector(trusted: &[&CertificateDer<'static>]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for c in trusted {
        roots.add((*c).clone()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = tokio_rustls::rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}
