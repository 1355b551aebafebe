//! Opus as Natter uses it (PROTOCOL.md §5.8): 48 kHz mono, 20 ms frames, VOIP application, in-band
//! FEC on with an expected loss rate, at least 32 kbit/s while FEC is on (issue 8 measured that
//! Opus' FEC only recovers useful audio from there up).

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bitrate, Channels, SampleRate};

use super::{VoiceError, FRAME_SAMPLES};

/// Largest Opus packet (RFC 6716 §3.4: 1275 bytes of frame data).
pub const MAX_OPUS_PACKET: usize = 1275;
/// Lowest bitrate accepted while FEC is on.
pub const MIN_FEC_BITRATE: i32 = 32_000;

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Target bitrate in bit/s (≥ [`MIN_FEC_BITRATE`] when `fec` is on).
    pub bitrate: i32,
    /// In-band forward error correction (the previous frame, coarsely, inside each packet).
    pub fec: bool,
    /// The loss rate the encoder plans for, in percent; FEC is only emitted when this is > 0.
    pub expected_loss_percent: u8,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        EncoderSettings {
            bitrate: MIN_FEC_BITRATE,
            fec: true,
            expected_loss_percent: 10,
        }
    }
}

impl EncoderSettings {
    /// Refuses settings that would break the protocol's promises.
    pub fn validate(&self) -> Result<(), VoiceError> {
        if !(6_000..=510_000).contains(&self.bitrate) {
            return Err(VoiceError::InvalidConfig(
                "bitrate must be 6000..=510000 bit/s",
            ));
        }
        if self.fec && self.bitrate < MIN_FEC_BITRATE {
            return Err(VoiceError::InvalidConfig(
                "bitrate must be at least 32000 bit/s while FEC is on",
            ));
        }
        if self.expected_loss_percent > 100 {
            return Err(VoiceError::InvalidConfig(
                "expected_loss_percent must be 0..=100",
            ));
        }
        Ok(())
    }
}

/// An Opus encoder for one outgoing stream.
pub struct OpusEncoder {
    inner: Encoder,
    out: [u8; MAX_OPUS_PACKET],
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusEncoder")
    }
}

impl OpusEncoder {
    /// A VOIP-mode 48 kHz mono encoder with these settings.
    pub fn new(settings: EncoderSettings) -> Result<Self, VoiceError> {
        settings.validate()?;
        let mut inner = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)?;
        inner.set_bitrate(Bitrate::BitsPerSecond(settings.bitrate))?;
        inner.set_inband_fec(settings.fec)?;
        inner.set_packet_loss_perc(settings.expected_loss_percent)?;
        Ok(OpusEncoder {
            inner,
            out: [0; MAX_OPUS_PACKET],
        })
    }

    /// Encodes one 20 ms frame; the packet borrows the encoder's buffer until the next call.
    pub fn encode(&mut self, frame: &[f32]) -> Result<&[u8], VoiceError> {
        debug_assert_eq!(frame.len(), FRAME_SAMPLES);
        let n = self.inner.encode_float(frame, &mut self.out)?;
        Ok(&self.out[..n])
    }
}

/// An Opus decoder for one incoming stream.
pub struct OpusDecoder {
    inner: Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusDecoder")
    }
}

impl OpusDecoder {
    /// A 48 kHz mono decoder.
    pub fn new() -> Result<Self, VoiceError> {
        Ok(OpusDecoder {
            inner: Decoder::new(SampleRate::Hz48000, Channels::Mono)?,
        })
    }

    /// Forgets the previous stream (a sender restarted): a fresh decoder state.
    pub fn reset(&mut self) -> Result<(), VoiceError> {
        *self = OpusDecoder::new()?;
        Ok(())
    }

    /// Decodes a packet into one frame. A packet of a different duration than 20 ms (which our
    /// senders never make) is an error; anything shorter leaves the rest of `out` silent.
    pub fn decode(&mut self, packet: &[u8], out: &mut [f32]) -> Result<(), VoiceError> {
        self.run(Some(packet), out, false)
    }

    /// Rebuilds a lost frame from the FEC data inside the packet that follows it. Opus conceals
    /// on its own when that packet carries no FEC data.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [f32]) -> Result<(), VoiceError> {
        self.run(Some(next_packet), out, true)
    }

    /// Packet-loss concealment: a plausible continuation of what came before.
    pub fn conceal(&mut self, out: &mut [f32]) -> Result<(), VoiceError> {
        self.run(None, out, false)
    }

    fn run(&mut self, packet: Option<&[u8]>, out: &mut [f32], fec: bool) -> Result<(), VoiceError> {
        // FEC and PLC decode exactly as many samples as the output holds, so it must be one frame.
        let out = &mut out[..FRAME_SAMPLES];
        let n = self.inner.decode_float(packet, &mut out[..], fec)?;
        out[n.min(FRAME_SAMPLES)..].fill(0.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, offset: usize) -> Vec<f32> {
        (offset..offset + n)
            .map(|i| 0.5 * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn low_bitrate_with_fec_is_refused() {
        let err = OpusEncoder::new(EncoderSettings {
            bitrate: 16_000,
            fec: true,
            expected_loss_percent: 10,
        })
        .unwrap_err();
        assert!(matches!(err, VoiceError::InvalidConfig(_)));
        assert!(OpusEncoder::new(EncoderSettings {
            bitrate: 16_000,
            fec: false,
            expected_loss_percent: 0,
        })
        .is_ok());
    }

    #[test]
    fn a_tone_survives_encode_decode_and_fec_rebuilds_a_lost_frame() {
        let mut enc = OpusEncoder::new(EncoderSettings::default()).expect("encoder");
        let mut dec = OpusDecoder::new().expect("decoder");
        let mut packets = Vec::new();
        for f in 0..20 {
            packets.push(enc.encode(&tone(960, f * 960)).expect("encode").to_vec());
        }
        assert!(packets.iter().all(|p| !p.is_empty() && p.len() < 400));
        let mut out = [0f32; FRAME_SAMPLES];
        for p in &packets[..10] {
            dec.decode(p, &mut out).expect("decode");
        }
        let rms = |s: &[f32]| (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt();
        assert!(rms(&out) > 0.2, "decoded tone rms {}", rms(&out));
        // Frame 10 is lost: rebuild it from frame 11's FEC data, then play 11 itself.
        dec.decode_fec(&packets[11], &mut out).expect("fec");
        assert!(rms(&out) > 0.1, "fec frame rms {}", rms(&out));
        dec.decode(&packets[11], &mut out).expect("decode");
        dec.conceal(&mut out).expect("plc");
        assert!(rms(&out) > 0.05, "concealed frame rms {}", rms(&out));
        // Garbage from the network is an error or noise, never a panic.
        let _ = dec.decode(&[0xff; 3], &mut out);
    }
}
