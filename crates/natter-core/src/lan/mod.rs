//! A server on this computer, and servers on the LAN (feature `host`).
//!
//! [`HostedServer`] runs the natter-server library inside this process (its SQLite file and
//! certificate in a directory the caller picks) and announces it over mDNS/DNS-SD;
//! [`Discovery`] browses for such announcements and keeps a list of [`LanServer`]s. The
//! announcement carries the server's certificate fingerprint, so a client that connects to a
//! discovered server pins that fingerprint instead of trusting on first use (PROTOCOL.md,
//! "LAN discovery"). The TXT record's layout lives here ([`Announcement`]), shared by both sides.
//!
//! Both need a tokio runtime (they spawn tasks on the current one); mDNS itself runs on a thread
//! of mdns-sd's own, one per [`HostedServer`] or [`Discovery`].

mod discover;
mod host;
mod mdns;

use std::net::IpAddr;

pub use discover::{Discovery, LanServer};
pub use host::{computer_name, HostConfig, HostInfo, HostedServer};

/// The DNS-SD service type Natter servers announce themselves under.
pub const SERVICE_TYPE: &str = "_natter._tcp.local.";

/// TXT key: the protocol version the server speaks (`natter_proto::PROTOCOL_VERSION`).
pub const TXT_PROTOCOL: &str = "proto";
/// TXT key: the TLS port (the SRV record carries the plain port).
pub const TXT_TLS_PORT: &str = "tls_port";
/// TXT key: lowercase hex SHA-256 of the server certificate's DER, the value clients pin.
pub const TXT_CERT_SHA256: &str = "cert_sha256";
/// TXT key: the name the host chose to be listed under (UTF-8).
pub const TXT_NAME: &str = "name";

/// A TXT string is one length byte plus `key=value`; this leaves the name room for its key.
const NAME_MAX_BYTES: usize = 200;

/// Why hosting or discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The server's settings were refused.
    #[error("server settings: {0}")]
    Config(#[from] natter_server::config::ConfigError),
    /// The server could not bind its ports, set up TLS or open its database.
    #[error("server: {0}")]
    Server(#[from] natter_server::ServerError),
    /// The server started but did not answer a `hello` on its own port.
    #[error("the server at {addr} did not come up: {why}")]
    NotServing {
        /// Where it was asked.
        addr: String,
        /// What went wrong.
        why: String,
    },
    /// The server's task ended abnormally (panicked or was cancelled).
    #[error("the server task failed: {0}")]
    Task(String),
    /// mDNS could not be started, or refused an announcement or a browse.
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// What a Natter server's TXT record says, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Name to list the server under.
    pub name: String,
    /// Protocol version.
    pub protocol_version: u32,
    /// TLS port.
    pub tls_port: u16,
    /// Certificate fingerprint, 64 lowercase hex digits.
    pub fingerprint: String,
}

/// Why a TXT record is not a usable announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    /// A required key is absent or has no value.
    #[error("TXT key `{0}` is missing")]
    Missing(&'static str),
    /// A key's value does not parse.
    #[error("TXT key `{key}` is invalid: {value:?}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Its value, lossily decoded.
        value: String,
    },
}

impl Announcement {
    /// The TXT properties, in the order they are sent.
    pub fn to_txt(&self) -> Vec<(String, String)> {
        vec![
            (TXT_PROTOCOL.into(), self.protocol_version.to_string()),
            (TXT_TLS_PORT.into(), self.tls_port.to_string()),
            (TXT_CERT_SHA256.into(), self.fingerprint.clone()),
            (
                TXT_NAME.into(),
                truncate(&self.name, NAME_MAX_BYTES).to_owned(),
            ),
        ]
    }

    /// Reads an announcement through `value` (a key's raw value; `None` when the key is absent
    /// or bare). Anything from the network is checked here: a record that fails is not listed.
    /// A missing name falls back to `fallback_name` (the DNS-SD instance name).
    pub fn from_txt<'a>(
        value: impl Fn(&str) -> Option<&'a [u8]>,
        fallback_name: &str,
    ) -> Result<Self, TxtError> {
        let text = |key: &'static str| -> Result<&'a str, TxtError> {
            let raw = value(key).ok_or(TxtError::Missing(key))?;
            std::str::from_utf8(raw).map_err(|_| TxtError::Invalid {
                key,
                value: String::from_utf8_lossy(raw).into_owned(),
            })
        };
        let invalid = |key: &'static str, value: &str| TxtError::Invalid {
            key,
            value: value.to_owned(),
        };
        let protocol = text(TXT_PROTOCOL)?;
        let protocol_version = protocol
            .parse::<u32>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| invalid(TXT_PROTOCOL, protocol))?;
        let tls = text(TXT_TLS_PORT)?;
        let tls_port = tls
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(TXT_TLS_PORT, tls))?;
        let fp = text(TXT_CERT_SHA256)?;
        if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(TXT_CERT_SHA256, fp));
        }
        let name = match value(TXT_NAME).map(String::from_utf8_lossy) {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => fallback_name.to_owned(),
        };
        Ok(Self {
            name,
            protocol_version,
            tls_port,
            fingerprint: fp.to_ascii_lowercase(),
        })
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How good an address is for reaching a server from another computer; lower is better:
/// LAN IPv4 first (what every home network routes), then routable IPv6, then loopback, which
/// only works on the same computer. IPv6 link-local addresses need a scope and are not used.
fn address_rank(ip: &IpAddr) -> Option<u8> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some(3),
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_multicast() => None,
        IpAddr::V4(_) => Some(0),
        IpAddr::V6(v6) if v6.is_loopback() => Some(4),
        // fe80::/10
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => None,
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => None,
        IpAddr::V6(_) => Some(1),
    }
}

/// Usable addresses, best first (see [`address_rank`]), without duplicates.
fn rank_addresses(ips: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut ranked: Vec<(u8, IpAddr)> = ips
        .into_iter()
        .filter_map(|ip| address_rank(&ip).map(|rank| (rank, ip)))
        .collect();
    ranked.sort();
    ranked.dedup();
    ranked.into_iter().map(|(_, ip)| ip).collect()
}

/// `host:port`, with an IPv6 address in brackets.
fn host_port(ip: &IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(*ip, port).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn parse(pairs: &[(&str, &[u8])]) -> Result<Announcement, TxtError> {
        let map: HashMap<&str, &[u8]> = pairs.iter().copied().collect();
        Announcement::from_txt(|key| map.get(key).copied(), "instance")
    }

    #[test]
    fn an_announcement_reads_back_what_was_written() {
        let sent = Announcement {
            name: "Ada's laptop 电脑".into(),
            protocol_version: 2,
            tls_port: 4399,
            fingerprint: FP.into(),
        };
        let txt = sent.to_txt();
        let got = Announcement::from_txt(
            |key| {
                txt.iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_bytes())
            },
            "instance",
        );
        assert_eq!(got, Ok(sent));
    }

    #[test]
    fn garbage_is_refused_with_the_key_that_is_wrong() {
        let good: Vec<(&str, &[u8])> = vec![
            ("proto", b"2"),
            ("tls_port", b"4399"),
            ("cert_sha256", FP.as_bytes()),
        ];
        assert!(parse(&good).is_ok());
        for (key, bad) in [
            ("proto", &b"two"[..]),
            ("proto", b"0"),
            ("tls_port", b"0"),
            ("tls_port", b"65536"),
            ("tls_port", b"-1"),
            ("cert_sha256", b"not hex"),
            ("cert_sha256", &FP.as_bytes()[..63]),
            ("cert_sha256", b"\xff\xfe"),
        ] {
            let mut pairs = good.clone();
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, bad));
            assert!(
                matches!(parse(&pairs), Err(TxtError::Invalid { key: k, .. }) if k == key),
                "{key}={bad:?} must be refused"
            );
            pairs.retain(|(k, _)| *k != key);
            assert_eq!(parse(&pairs), Err(TxtError::Missing(key)));
        }
    }

    #[test]
    fn a_missing_name_falls_back_and_an_upper_case_fingerprint_is_lowered() {
        let upper = FP.to_ascii_uppercase();
        let got = parse(&[
            ("proto", b"2"),
            ("tls_port", b"1"),
            ("cert_sha256", upper.as_bytes()),
            ("name", b"  "),
        ])
        .expect("valid");
        assert_eq!(got.name, "instance");
        assert_eq!(got.fingerprint, FP);
    }

    #[test]
    fn a_long_name_is_cut_on_a_character_boundary() {
        let name = "名".repeat(100);
        let cut = truncate(&name, NAME_MAX_BYTES);
        assert!(cut.len() <= NAME_MAX_BYTES && cut.len() > NAME_MAX_BYTES - 3);
        assert!(name.starts_with(cut));
    }

    #[test]
    fn lan_addresses_come_first_and_loopback_last() {
        let ips: Vec<IpAddr> = [
            "127.0.0.1",
            "::1",
            "fe80::1",
            "192.168.1.20",
            "2001:db8::5",
            "10.0.0.3",
            "192.168.1.20",
        ]
        .iter()
        .map(|s| s.parse().expect("ip"))
        .collect();
        let ranked: Vec<String> = rank_addresses(ips)
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        assert_eq!(
            ranked,
            [
                "10.0.0.3",
                "192.168.1.20",
                "2001:db8::5",
                "127.0.0.1",
                "::1"
            ]
        );
        assert_eq!(
            host_port(&"2001:db8::5".parse().expect("ip"), 4399),
            "[2001:db8::5]:4399"
        );
    }
}
