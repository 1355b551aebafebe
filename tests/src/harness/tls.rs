//! TLS for test clients: trust exactly one certificate, the one the server under test made.

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::{client::TlsStream, TlsConnector};

/// The name the server's self-signed certificate is issued for (one of its SANs).
pub const SERVER_NAME: &str = "localhost";

/// Reads the first certificate of a PEM file.
pub fn read_cert_pem(path: &std::path::Path) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_file(path)
        .with_context(|| format!("while reading the server certificate {}", path.display()))
}

/// Lowercase hex SHA-256 of a DER certificate, as the ready file spells `cert_sha256`.
pub fn cert_fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A client configuration whose only trust anchor is `cert`; any other certificate fails the
/// handshake, and so does a certificate that does not name the server.
pub fn client_config_trusting(cert: &CertificateDer<'_>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.clone().into_owned())
        .context("while adding the server certificate as the only trust anchor")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("while choosing TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs a TLS handshake over `tcp`, trusting only `cert`, verifying it for `server_name`.
pub async fn handshake(
    tcp: TcpStream,
    cert: &CertificateDer<'_>,
    server_name: &str,
) -> Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(client_config_trusting(cert)?);
    let name = ServerName::try_from(server_name.to_owned())
        .with_context(|| format!("`{server_name}` is not a valid TLS server name"))?;
    connector
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with the server as `{server_name}` failed"))
}
