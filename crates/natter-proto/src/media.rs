//! Voice packets over UDP (PROTOCOL.md §5.8): the byte layout both ends and the relay share.
//! Pure encoding and decoding; sockets, timing and codecs live elsewhere.
//!
//! ```text
//! offset size  field
//! 0      1     magic 0xA7
//! 1      1     kind: 1 bind, 2 bind_ack, 3 audio
//! 2      1     role: 0 caller, 1 callee (who sent it)
//! 3      16    the call's media token (media.token's 32 hex digits as bytes)
//! -- audio only --
//! 19     4     stream id (random per sender and call; a new id means a new stream)
//! 23     2     sequence number (wraps)
//! 25     4     timestamp: 48 kHz sample clock of the frame's first sample (wraps)
//! 29     …     one Opus packet (a 20 ms frame, FEC inside)
//! ```
//! All integers are big-endian.

/// First byte of every packet.
pub const MAGIC: u8 = 0xA7;
/// Bytes before an audio packet's payload.
pub const AUDIO_HEADER_LEN: usize = 29;
/// Bytes of a bind / bind_ack packet.
pub const BIND_LEN: usize = 19;
/// Largest packet accepted (an Opus frame is at most 1275 bytes).
pub const MAX_PACKET: usize = 1500;

/// Which side of the call sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Who called.
    Caller,
    /// Who was called.
    Callee,
}

impl Role {
    /// The other side.
    pub fn other(self) -> Role {
        match self {
            Role::Caller => Role::Callee,
            Role::Callee => Role::Caller,
        }
    }
}

/// A decoded packet; audio payloads borrow from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// "This is my address": sent to the relay (and to the peer, to open a direct path).
    Bind {
        /// Sender.
        role: Role,
        /// The call's token.
        token: [u8; 16],
    },
    /// The relay's (or the peer's) answer to a bind, so the sender knows the path works.
    BindAck {
        /// Who answers (the relay answers with the binder's own role).
        role: Role,
        /// The call's token.
        token: [u8; 16],
    },
    /// One audio frame.
    Audio {
        /// Sender.
        role: Role,
        /// The call's token.
        token: [u8; 16],
        /// Stream id.
        stream: u32,
        /// Sequence number.
        seq: u16,
        /// 48 kHz timestamp.
        ts: u32,
        /// The Opus packet.
        payload: &'a [u8],
    },
}

/// Why a datagram is not a packet (it is dropped, never answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than its header, longer than [`MAX_PACKET`], or with a bad magic byte.
    #[error("not a Natter media packet")]
    NotOurs,
    /// Unknown kind or role byte.
    #[error("unknown packet kind or role")]
    Unknown,
}

impl<'a> Packet<'a> {
    /// Who sent it.
    pub fn role(&self) -> Role {
        match self {
            Packet::Bind { role, .. }
            | Packet::BindAck { role, .. }
            | Packet::Audio { role, .. } => *role,
        }
    }

    /// The call token it carries.
    pub fn token(&self) -> &[u8; 16] {
        match self {
            Packet::Bind { token, .. }
            | Packet::BindAck { token, .. }
            | Packet::Audio { token, .. } => token,
        }
    }

    /// Parses a datagram.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, PacketError> {
        if datagram.len() < BIND_LEN || datagram.len() > MAX_PACKET || datagram[0] != MAGIC {
            return Err(PacketError::NotOurs);
        }
        let role = match datagram[2] {
            0 => Role::Caller,
            1 => Role::Callee,
            _ => return Err(PacketError::Unknown),
        };
        let mut token = [0u8; 16];
        token.copy_from_slice(&datagram[3..19]);
        match datagram[1] {
            1 if datagram.len() == BIND_LEN => Ok(Packet::Bind { role, token }),
            2 if datagram.len() == BIND_LEN => Ok(Packet::BindAck { role, token }),
            3 if datagram.len() >= AUDIO_HEADER_LEN => {
                let u32_at = |i: usize| {
                    u32::from_be_bytes([
                        datagram[i],
                        datagram[i + 1],
                        datagram[i + 2],
                        datagram[i + 3],
                    ])
                };
                Ok(Packet::Audio {
                    role,
                    token,
                    stream: u32_at(19),
                    seq: u16::from_be_bytes([datagram[23], datagram[24]]),
                    ts: u32_at(25),
                    payload: &datagram[AUDIO_HEADER_LEN..],
                })
            }
            1..=3 => Err(PacketError::NotOurs),
            _ => Err(PacketError::Unknown),
        }
    }

    /// Appends the wire bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, role, token) = match self {
            Packet::Bind { role, token } => (1u8, *role, token),
            Packet::BindAck { role, token } => (2, *role, token),
            Packet::Audio { role, token, .. } => (3, *role, token),
        };
        out.push(MAGIC);
        out.push(kind);
        out.push(match role {
            Role::Caller => 0,
            Role::Callee => 1,
        });
        out.extend_from_slice(token);
        if let Packet::Audio {
            stream,
            seq,
            ts,
            payload,
            ..
        } = self
        {
            out.extend_from_slice(&stream.to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(payload);
        }
    }
}

/// `media.token` (32 lowercase hex digits) as the 16 bytes packets carry.
pub fn token_bytes(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The 16 token bytes as `media.token` writes them.
pub fn token_hex(token: &[u8; 16]) -> String {
    token.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_garbage_is_refused() {
        let token = token_bytes("00112233445566778899aabbccddeeff").expect("hex");
        assert_eq!(token_hex(&token), "00112233445566778899aabbccddeeff");
        let audio = Packet::Audio {
            role: Role::Callee,
            token,
            stream: 0xdead_beef,
            seq: 65535,
            ts: 960,
            payload: &[1, 2, 3],
        };
        for p in [
            Packet::Bind {
                role: Role::Caller,
                token,
            },
            Packet::BindAck {
                role: Role::Callee,
                token,
            },
            audio,
        ] {
            let mut bytes = Vec::new();
            p.encode(&mut bytes);
            assert_eq!(Packet::decode(&bytes), Ok(p));
        }
        let mut bytes = Vec::new();
        audio.encode(&mut bytes);
        assert_eq!(bytes.len(), AUDIO_HEADER_LEN + 3);
        assert_eq!(Packet::decode(&bytes[..10]), Err(PacketError::NotOurs));
        let mut bad = bytes.clone();
        bad[0] = 0;
        assert_eq!(Packet::decode(&bad), Err(PacketError::NotOurs));
        bad = bytes.clone();
        bad[2] = 9;
        assert_eq!(Packet::decode(&bad), Err(PacketError::Unknown));
        assert_eq!(
            Packet::decode(&vec![MAGIC; 2000]),
            Err(PacketError::NotOurs)
        );
        assert!(token_bytes("zz112233445566778899aabbccddeeff").is_none());
        assert!(token_bytes("0011").is_none());
    }
}
