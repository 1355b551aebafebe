//! Connecting: plain TCP, or TLS with trust on first use. The first certificate a server shows is
//! pinned by its SHA-256 per server address; a different one later is refused with
//! [`crate::ClientError::CertificateChanged`] until the user accepts it explicitly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::ClientError;

/// Which server to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS on.
    pub tls: bool,
}

impl ServerAddr {
    /// Parses the nodes of one service, `host[:port]` separated by commas or spaces
    /// (`[v6]:port` for IPv6 addresses with a port); a node without a port gets `default_port`.
    /// The first is the one to try first. An error names the entry it could not read.
    pub fn parse_list(text: &str, default_port: u16, tls: bool) -> Result<Vec<Self>, String> {
        let mut out = Vec::new();
        for entry in text.split([',', ' ', '\n', '\t']).filter(|e| !e.is_empty()) {
            let (host, port) = match entry.strip_prefix('[') {
                Some(rest) => {
                    let (host, after) = rest
                        .split_once(']')
                        .ok_or_else(|| format!("`{entry}`: missing `]`"))?;
                    match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None if after.is_empty() => (host, None),
                        None => return Err(format!("`{entry}`: expected `:port` after `]`")),
                    }
                }
                // More than one colon and no brackets: a bare IPv6 address.
                None if entry.matches(':').count() > 1 => (entry, None),
                None => match entry.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (entry, None),
                },
            };
            if host.is_empty() {
                return Err(format!("`{entry}`: no host"));
            }
            let port = match port {
                Some(p) => match p.parse::<u16>() {
                    Ok(p) if p > 0 => p,
                    _ => return Err(format!("`{entry}`: the port must be 1-65535")),
                },
                None => default_port,
            };
            out.push(Self {
                host: host.to_owned(),
                port,
                tls,
            });
        }
        if out.is_empty() {
            return Err("no server address".into());
        }
        Ok(out)
    }

    /// `host:port`, the key pins are stored under.
    pub fn key(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}:{}",
            if self.tls { "tls://" } else { "tcp://" },
            self.host,
            self.port
        )
    }
}

/// Pinned certificate fingerprints, a JSON file of `"host:port": "hex sha256"`.
#[derive(Debug)]
pub struct PinStore {
    path: PathBuf,
    pins: Mutex<BTreeMap<String, String>>,
}

impl PinStore {
    /// Loads pins from `path` (missing or unreadable file: no pins).
    pub fn load(path: &Path) -> Self {
        let pins = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Self {
            path: path.to_owned(),
            pins: Mutex::new(pins),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pinned fingerprint for a server.
    pub fn get(&self, server: &str) -> Option<String> {
        self.lock().get(server).cloned()
    }

    /// Pins (or re-pins) a fingerprint and saves the file.
    pub fn set(&self, server: &str, fingerprint: &str) -> Result<(), ClientError> {
        let snapshot = {
            let mut pins = self.lock();
            pins.insert(server.to_owned(), fingerprint.to_owned());
            pins.clone()
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_string_pretty(&snapshot).unwrap_or_default(),
        )?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}

/// Lowercase hex SHA-256 of a certificate.
pub fn fingerprint(cert: &[u8]) -> String {
    Sha256::digest(cert)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Accepts exactly the pinned certificate, or on first use any certificate (recording what it
/// saw); signatures are still checked, so the peer must hold the certificate's key.
#[derive(Debug)]
struct PinVerifier {
    expected: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

/// A verifier that accepts only the certificate with this lowercase hex SHA-256 (signatures checked).
pub fn pinned_verifier(fingerprint: &str) -> Arc<dyn ServerCertVerifier> {
    Arc::new(PinVerifier {
        expected: Some(fingerprint.to_owned()),
        seen: Arc::default(),
        provider: Arc::new(rustls::crypto::ring::default_provider()),
    })
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = fingerprint(end_entity.as_ref());
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(actual.clone());
        match &self.expected {
            Some(expected) if *expected != actual => {
                Err(rustls::Error::General("pinned certificate changed".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A connected byte stream, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Opens a connection within `timeout`, checking the certificate pin for TLS.
pub async fn connect(
    server: &ServerAddr,
    pins: &PinStore,
    timeout: Duration,
) -> Result<Box<dyn Stream>, ClientError> {
    let tcp = tokio::time::timeout(
        timeout,
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await
    .map_err(|_| ClientError::Timeout)??;
    let _ = tcp.set_nodelay(true);
    if !server.tls {
        return Ok(Box::new(tcp));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let expected = pins.get(&server.key());
    let seen = Arc::new(Mutex::new(None));
    let verifier = PinVerifier {
        expected: expected.clone(),
        seen: seen.clone(),
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name =
        ServerName::try_from(server.host.clone()).map_err(|e| ClientError::Tls(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let result = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| ClientError::Timeout)?;
    let actual = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match (result, expected, actual) {
        (Ok(stream), None, Some(actual)) => {
            pins.set(&server.key(), &actual)?;
            tracing::info!(server = %server, fingerprint = %actual, "pinned the server certificate on first use");
            Ok(Box::new(stream))
        }
        (Ok(stream), _, _) => Ok(Box::new(stream)),
        (Err(_), Some(expected), Some(actual)) if expected != actual => {
            Err(ClientError::CertificateChanged {
                server: server.key(),
                expected,
                actual,
            })
        }
        (Err(e), _, _) => Err(ClientError::Tls(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::ServerAddr;

    fn keys(list: &[ServerAddr]) -> Vec<String> {
        list.iter().map(ServerAddr::key).collect()
    }

    #[test]
    fn a_list_of_nodes_parses_in_order_with_default_ports() {
        let list = ServerAddr::parse_list("a.example, b.example:4100 10.0.0.3", 4004, true)
            .expect("parses");
        assert_eq!(
            keys(&list),
            ["a.example:4004", "b.example:4100", "10.0.0.3:4004"]
        );
        assert!(list.iter().all(|s| s.tls));
        let v6 = ServerAddr::parse_list("[::1]:4100,::1", 4004, false).expect("parses");
        assert_eq!(keys(&v6), ["::1:4100", "::1:4004"]);
    }

    #[test]
    fn a_bad_entry_is_named_in_the_error() {
        for (text, names) in [
            ("a.example, b.example:0", "b.example:0"),
            ("a.example:http", "a.example:http"),
            ("[::1", "[::1"),
            (":4004", ":4004"),
        ] {
            let err = ServerAddr::parse_list(text, 4004, false).expect_err(text);
            assert!(err.contains(names), "{text}: {err}");
        }
        assert!(ServerAddr::parse_list(" , ", 4004, false).is_err());
    }
}
