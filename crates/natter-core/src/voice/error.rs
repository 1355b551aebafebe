//! What can go wrong in the media path, in variants a caller can act on.

/// Errors of the voice module.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// The configuration cannot work (the message says which field and why).
    #[error("invalid media configuration: {0}")]
    InvalidConfig(&'static str),
    /// The UDP socket could not be bound or used.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// libopus refused a setting or a frame.
    #[error("opus: {0}")]
    Codec(#[from] audiopus::Error),
    /// No audio device by that name, or no default device of that direction.
    #[error("no audio device: {0}")]
    NoDevice(String),
    /// The audio backend failed (device unplugged, busy, format refused …).
    #[error("audio device: {0}")]
    Device(String),
    /// The device offers no sample format this module converts.
    #[error("unsupported sample format {0}")]
    UnsupportedFormat(String),
    /// A WAV file could not be read or written.
    #[error("wav: {0}")]
    Wav(#[from] hound::Error),
    /// The resampler could not be built for these rates.
    #[error("resampler: {0}")]
    Resampler(String),
}

impl From<cpal::Error> for VoiceError {
    fn from(e: cpal::Error) -> Self {
        VoiceError::Device(e.to_string())
    }
}
