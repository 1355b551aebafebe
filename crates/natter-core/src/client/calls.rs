//! Voice calls: ringing, answering, hanging up, mute, level and statistics go to the call
//! manager; the audio devices a call opens are chosen here.

use serde::{Deserialize, Serialize};

use super::Client;
use crate::{voice, AudioFactory, CallInfo, ClientError};

/// The audio devices a call can use, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AudioDevices {
    /// Microphones.
    pub inputs: Vec<String>,
    /// Speakers.
    pub outputs: Vec<String>,
    /// The system's default microphone.
    pub default_input: Option<String>,
    /// The system's default speaker.
    pub default_output: Option<String>,
}

impl Client {
    /// Rings `to`; the call goes on through [`Event::Call`].
    pub async fn call(&self, to: &str) -> Result<CallInfo, ClientError> {
        self.calls.call(to).await
    }

    /// Accepts or declines the ringing call.
    pub async fn answer_call(&self, call_id: &str, accept: bool) -> Result<(), ClientError> {
        self.calls.answer(call_id, accept).await
    }

    /// Ends a call, or cancels one still ringing.
    pub async fn hang_up(&self, call_id: &str) -> Result<(), ClientError> {
        self.calls.hang_up(call_id).await
    }

    /// Mutes or unmutes the microphone (also for the next call's start).
    pub async fn set_muted(&self, muted: bool) -> Option<CallInfo> {
        self.calls.set_muted(muted).await
    }

    /// The call in progress, if any.
    pub async fn current_call(&self) -> Option<CallInfo> {
        self.calls.current().await
    }

    /// The microphone level of the call in progress, 0.0–1.0 (−60 dBFS … 0 dBFS).
    pub async fn call_level(&self) -> f32 {
        self.calls.input_level().await
    }

    /// Media statistics of the call in progress (packets, loss, path, delay).
    pub async fn call_stats(&self) -> Option<voice::MediaStats> {
        self.calls.stats().await
    }

    /// The microphones and speakers there are.
    pub fn audio_devices(&self) -> Result<AudioDevices, ClientError> {
        let all = voice::list_devices().map_err(|e| ClientError::Io(format!("audio: {e}")))?;
        let defaults = voice::default_devices();
        let names = |input: bool| {
            let mut v: Vec<String> = all
                .iter()
                .filter(|d| if input { d.is_input } else { d.is_output })
                .map(|d| d.name.clone())
                .collect();
            v.dedup();
            v
        };
        Ok(AudioDevices {
            inputs: names(true),
            outputs: names(false),
            default_input: defaults.input,
            default_output: defaults.output,
        })
    }

    /// Chooses the devices the next call opens (`None` = the system default).
    pub fn set_audio_devices(&self, input: Option<String>, output: Option<String>) {
        self.devices.choose(input, output);
    }

    /// Sends call audio only through the server's relay, never straight to the peer: slower by a
    /// hop, but neither side learns the other's address.
    pub fn set_relay_only(&self, relay_only: bool) {
        self.calls.set_relay_only(relay_only);
    }

    /// Replaces how calls get their audio ends (tests: a WAV microphone and a recorder).
    pub fn set_audio_factory(&self, factory: AudioFactory) {
        self.calls.set_audio(factory);
    }
}
