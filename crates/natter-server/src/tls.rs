//! TLS on port 4399: a configured certificate, or a self-signed one generated on first start and
//! kept in the data dir so its fingerprint (which clients pin) survives restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// TLS setup problems.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// No certificate or key in a PEM file.
    #[error("{0}: no certificate or private key found")]
    Empty(PathBuf),
    /// Certificate generation failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready TLS acceptor and what clients need to pin it.
#[derive(Clone)]
pub struct TlsSetup {
    /// The acceptor.
    pub acceptor: TlsAcceptor,
    /// Lowercase hex SHA-256 of the leaf certificate's DER.
    pub cert_sha256: String,
    /// Path of the certificate PEM.
    pub cert_path: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads `files`, or the generated certificate in `data_dir/tls` (creating it if missing).
pub fn load_or_create(
    data_dir: &Path,
    files: Option<&(PathBuf, PathBuf)>,
) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path) = match files {
        Some((c, k)) => (c.clone(), k.clone()),
        None => {
            let dir = data_dir.join("tls");
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            if !cert.exists() || !key.exists() {
                generate(&dir, &cert, &key)?;
            }
            (cert, key)
        }
    };
    let cert_pem = std::fs::read(&cert_path).map_err(io_err(&cert_path))?;
    let key_pem = std::fs::read(&key_path).map_err(io_err(&key_path))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(io_err(&cert_path))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(io_err(&key_path))?
        .ok_or_else(|| TlsError::Empty(key_path.clone()))?;
    let leaf = certs
        .first()
        .ok_or_else(|| TlsError::Empty(cert_path.clone()))?;
    let cert_sha256 = hex(&Sha256::digest(leaf.as_ref()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(TlsSetup {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_sha256,
        cert_path: std::fs::canonicalize(&cert_path).unwrap_or(cert_path),
    })
}

fn generate(dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated = rcgen::generate_simple_self_signed(names)?;
    write_private(key, generated.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, generated.cert.pem()).map_err(io_err(cert))?;
    tracing::info!(path = %cert.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
