//! The input level meter: written once per captured frame, read whenever the UI likes, through
//! atomics (no lock between the session thread and the UI).

use std::sync::atomic::{AtomicU32, Ordering};

/// The microphone's level over the last 20 ms frame, linear in `[0, 1]` (full scale = 1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InputLevel {
    /// Root mean square.
    pub rms: f32,
    /// Largest absolute sample.
    pub peak: f32,
}

impl InputLevel {
    /// The RMS in dBFS (−100 for silence), for meters drawn in decibels.
    pub fn rms_dbfs(&self) -> f32 {
        if self.rms <= 1e-5 {
            -100.0
        } else {
            20.0 * self.rms.log10()
        }
    }

    /// Measures one frame.
    pub fn of(samples: &[f32]) -> InputLevel {
        if samples.is_empty() {
            return InputLevel::default();
        }
        let (sum, peak) = samples.iter().fold((0f32, 0f32), |(sum, peak), s| {
            (sum + s * s, peak.max(s.abs()))
        });
        InputLevel {
            rms: (sum / samples.len() as f32).sqrt().min(1.0),
            peak: peak.min(1.0),
        }
    }
}

/// Shared between the session thread (writer) and the handle (reader).
#[derive(Debug, Default)]
pub(crate) struct LevelMeter {
    rms: AtomicU32,
    peak: AtomicU32,
}

impl LevelMeter {
    pub(crate) fn store(&self, level: InputLevel) {
        // Relaxed: the two values are independent readings; a torn pair is harmless in a meter.
        self.rms.store(level.rms.to_bits(), Ordering::Relaxed);
        self.peak.store(level.peak.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> InputLevel {
        InputLevel {
            rms: f32::from_bits(self.rms.load(Ordering::Relaxed)),
            peak: f32::from_bits(self.peak.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_scale_sine_measures_minus_nine_dbfs() {
        let s: Vec<f32> = (0..960)
            .map(|i| 0.5 * (i as f32 * 2.0 * std::f32::consts::PI / 48.0).sin())
            .collect();
        let meter = LevelMeter::default();
        meter.store(InputLevel::of(&s));
        let l = meter.load();
        assert!((l.rms - 0.3536).abs() < 0.01, "{l:?}");
        assert!((l.peak - 0.5).abs() < 0.01, "{l:?}");
        assert!((l.rms_dbfs() + 9.03).abs() < 0.2, "{}", l.rms_dbfs());
        assert_eq!(InputLevel::of(&[0.0; 960]).rms_dbfs(), -100.0);
    }
}
