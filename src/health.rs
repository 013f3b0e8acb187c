//! `parlor healthcheck`: one `GET /healthz`, over plain HTTP or TLS, with no curl in the
//! runtime image.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

use crate::Config;

/// Where a health check should knock for a server run with `config`: its listen address, with
/// an unspecified IP (0.0.0.0, ::) replaced by loopback; and whether it speaks TLS.
pub fn target(config: &Config) -> (SocketAddr, bool) {
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    (addr, config.tls.enabled())
}

/// `GET /healthz` at `addr`; Ok when it answers 200. With `tls`, the handshake accepts any
/// certificate: this asks whether our own process is alive, not who it is (and a certificate
/// for a public name would not match a loopback address anyway).
pub fn probe(addr: SocketAddr, tls: bool, timeout: Duration) -> Result<()> {
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| anyhow!("cannot reach {addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let request = b"GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut response = Vec::new();
    if tls {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS client setup")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let name = ServerName::IpAddress(addr.ip().into());
        let connection = rustls::ClientConnection::new(Arc::new(client), name).context("TLS client setup")?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        stream.write_all(request).with_context(|| format!("TLS to {addr}"))?;
        read_to_close(&mut stream, &mut response)?;
    } else {
        tcp.write_all(request)?;
        read_to_close(&mut tcp, &mut response)?;
    }
    let text = String::from_utf8_lossy(&response);
    let status = text.lines().next().unwrap_or_default();
    ensure!(status.split_whitespace().nth(1) == Some("200"), "unhealthy: {addr} answered {status:?}");
    Ok(())
}

/// Read until the peer closes. A TLS peer that closes without close_notify still sent a whole
/// HTTP/1.0 response, so that error ends the read rather than failing it.
fn read_to_close(stream: &mut impl Read, out: &mut Vec<u8>) -> Result<()> {
    match stream.read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Accepts any server certificate, still checking the handshake signatures: the health check
/// asks whether the server answers, and `parlor check` shows what it serves, whoever signed it.
#[derive(Debug)]
pub(crate) struct AnyCertificate(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
