//! What a certificate authority's validation requests are answered with while an ACME order
//! is in progress: a leaf that the TLS listeners (which answer) and the ACME manager (which
//! fills it in) both use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_rustls::rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The answers to the CA's validation requests while an order is in progress.
#[derive(Debug, Default)]
pub struct Challenges {
    /// HTTP-01: token → key authorization.
    http: Mutex<HashMap<String, String>>,
    /// TLS-ALPN-01: domain → the self-signed certificate carrying the key authorization's digest.
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// The key authorization for an HTTP-01 token being validated.
    pub fn http_answer(&self, token: &str) -> Option<String> {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned()
    }

    /// The TLS-ALPN-01 certificate for a domain being validated.
    pub fn alpn_cert(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        let domain = domain.to_ascii_lowercase();
        self.alpn.lock().unwrap_or_else(|e| e.into_inner()).get(&domain).cloned()
    }

    /// Answer HTTP-01 `token` with `answer` until the attempt ends.
    pub fn set_http(&self, token: String, answer: String) {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).insert(token, answer);
    }

    /// Answer TLS-ALPN-01 handshakes for `domain` with `cert` until the attempt ends.
    pub fn set_alpn(&self, domain: &str, cert: Arc<CertifiedKey>) {
        self.alpn.lock().unwrap_or_else(|e| e.into_inner()).insert(domain.to_ascii_lowercase(), cert);
    }

    pub(crate) fn clear(&self) {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.alpn.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Clears the challenges when an attempt ends, however it ends.
pub(crate) struct ClearOnDrop<'a>(pub(crate) &'a Challenges);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}
