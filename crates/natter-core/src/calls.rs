//! Voice calls: the client's side of the signalling state machine (PROTOCOL.md §5.8) and the
//! media session it starts and stops.
//!
//! ```text
//!  call() ──► Calling ──call_accepted──► Connecting ──media up──► Active
//!  call_incoming ──► Ringing ──answer(true)──► Connecting ──media up──► Active
//!  any phase ──call_ended / hang_up / own connection lost──► Ended(reason)
//! ```
//!
//! The server is the authority: every call ends with its `call_ended`, except when our own
//! connection drops — then the server cannot reach us, so the call ends here with
//! `connection_lost` (the server ends it for the other side the same way).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use natter_proto::media::Role;
use natter_proto::{CallEndReason, CallMedia, ClientMessage, ErrorCode, ServerMessage};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use crate::engine::{request_id, Command};
use crate::voice::{self, AudioSink, AudioSource, MediaConfig, MediaSession};
use crate::{now_ms, ClientError, ConnectionState, Event};

/// The microphone and speaker calls open, by name (`None` = the system default); shared between
/// the client, which sets it, and the cpal factory, which reads it when a call starts.
#[derive(Clone, Default)]
pub(crate) struct DeviceChoice(Arc<Mutex<(Option<String>, Option<String>)>>);

impl DeviceChoice {
    pub(crate) fn choose(&self, input: Option<String>, output: Option<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (input, output);
    }

    fn chosen(&self) -> (Option<String>, Option<String>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Cpal devices chosen by name, opened when a call starts.
pub(crate) fn cpal_audio(devices: DeviceChoice) -> AudioFactory {
    Arc::new(move || {
        let (input, output) = devices.chosen();
        // A chosen device that is gone (unplugged headset) falls back to the system default:
        // a call with the laptop's microphone beats a call that cannot start.
        let source = voice::CpalSource::open(input.as_deref())
            .or_else(|e| {
                tracing::warn!(error = %e, "chosen microphone unavailable; using the default");
                voice::CpalSource::open(None)
            })
            .map_err(|e| ClientError::Io(format!("microphone: {e}")))?;
        let sink = voice::CpalSink::open(output.as_deref())
            .or_else(|e| {
                tracing::warn!(error = %e, "chosen speaker unavailable; using the default");
                voice::CpalSink::open(None)
            })
            .map_err(|e| ClientError::Io(format!("speaker: {e}")))?;
        Ok((
            Box::new(source) as Box<dyn AudioSource>,
            Box::new(sink) as Box<dyn AudioSink>,
        ))
    })
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// We called; the other side's phone is ringing.
    Calling,
    /// Someone is calling us.
    Ringing,
    /// Accepted; the audio path is being set up.
    Connecting,
    /// Talking.
    Active,
    /// Over (see `reason`).
    Ended,
}

/// One call as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CallInfo {
    /// The server's id.
    pub call_id: String,
    /// The other person.
    pub peer: String,
    /// We called (`true`) or were called.
    pub outgoing: bool,
    /// Where it stands.
    pub phase: CallPhase,
    /// Why it ended, once `ended`.
    pub reason: Option<CallEndReason>,
    /// When audio started flowing (ms since the epoch), for the duration display.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub since: Option<i64>,
    /// Our microphone is muted.
    pub muted: bool,
}

/// Makes the audio ends of a call: cpal devices in the app, WAV files and recorders in tests.
pub type AudioFactory =
    Arc<dyn Fn() -> Result<(Box<dyn AudioSource>, Box<dyn AudioSink>), ClientError> + Send + Sync>;

struct Current {
    info: CallInfo,
    media: Option<CallMedia>,
    session: Option<MediaSession>,
    peer_addr: Option<SocketAddr>,
}

pub(crate) struct Calls {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    state: watch::Receiver<ConnectionState>,
    audio: Mutex<AudioFactory>,
    current: tokio::sync::Mutex<Option<Current>>,
    /// Calls that ended before we knew them (a `call_ended` overtaking its `call_ringing`).
    ended_early: Mutex<VecDeque<(String, CallEndReason)>>,
    muted: std::sync::atomic::AtomicBool,
    /// Never send audio straight to the peer (which would show each side the other's address).
    relay_only: std::sync::atomic::AtomicBool,
}

fn invalid(message: &str) -> ClientError {
    ClientError::Invalid {
        code: ErrorCode::InvalidField,
        message: message.to_owned(),
    }
}

impl Calls {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        events: broadcast::Sender<Event>,
        state: watch::Receiver<ConnectionState>,
        audio: AudioFactory,
    ) -> Arc<Self> {
        Arc::new(Self {
            commands,
            events,
            state,
            audio: Mutex::new(audio),
            current: tokio::sync::Mutex::new(None),
            ended_early: Mutex::new(VecDeque::new()),
            muted: Default::default(),
            relay_only: Default::default(),
        })
    }

    pub(crate) fn set_relay_only(&self, relay_only: bool) {
        self.relay_only
            .store(relay_only, std::sync::atomic::Ordering::Relaxed);
    }

    fn direct_allowed(&self) -> bool {
        !self.relay_only.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_audio(&self, audio: AudioFactory) {
        *self.audio.lock().unwrap_or_else(|p| p.into_inner()) = audio;
    }

    fn emit(&self, info: &CallInfo) {
        let _ = self.events.send(Event::Call(info.clone()));
    }

    async fn request(&self, message: ClientMessage) -> Result<ServerMessage, ClientError> {
        crate::engine::request(&self.commands, message).await
    }

    /// Call pushes from the engine, and our own connection dropping.
    pub(crate) async fn run(self: Arc<Self>, mut pushes: mpsc::UnboundedReceiver<ServerMessage>) {
        let mut state = self.state.clone();
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => self.push(push).await,
                    None => break,
                },
                changed = state.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = *state.borrow_and_update();
                    if now != ConnectionState::Online {
                        self.end_current(None, CallEndReason::ConnectionLost).await;
                    }
                }
            }
        }
        self.end_current(None, CallEndReason::ConnectionLost).await;
    }

    /// The call in progress, if any.
    pub(crate) async fn current(&self) -> Option<CallInfo> {
        self.current.lock().await.as_ref().map(|c| c.info.clone())
    }

    /// Rings `to`.
    pub(crate) async fn call(&self, to: &str) -> Result<CallInfo, ClientError> {
        if self.current.lock().await.is_some() {
            return Err(invalid("you are already in a call"));
        }
        let reply = self
            .request(ClientMessage::CallInvite {
                id: request_id(),
                to: to.to_owned(),
            })
            .await?;
        let ServerMessage::CallRinging { call_id, .. } = reply else {
            return Err(ClientError::Protocol(format!(
                "unexpected reply to call_invite: {reply:?}"
            )));
        };
        self.muted
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let mut info = CallInfo {
            call_id: call_id.clone(),
            peer: to.to_owned(),
            outgoing: true,
            phase: CallPhase::Calling,
            reason: None,
            since: None,
            muted: false,
        };
        let early = self.take_ended_early(&call_id);
        if let Some(reason) = early {
            info.phase = CallPhase::Ended;
            info.reason = Some(reason);
            self.emit(&info);
            return Ok(info);
        }
        *self.current.lock().await = Some(Current {
            info: info.clone(),
            media: None,
            session: None,
            peer_addr: None,
        });
        self.emit(&info);
        Ok(info)
    }

    /// Answers a ringing call.
    pub(crate) async fn answer(&self, call_id: &str, accept: bool) -> Result<(), ClientError> {
        {
            let current = self.current.lock().await;
            match current.as_ref() {
                Some(c) if c.info.call_id == call_id && c.info.phase == CallPhase::Ringing => {}
                _ => return Err(invalid("no such call is ringing")),
            }
        }
        match self
            .request(ClientMessage::CallAnswer {
                id: request_id(),
                call_id: call_id.to_owned(),
                accept,
            })
            .await?
        {
            ServerMessage::Ok { .. } => {}
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected reply to call_answer: {other:?}"
                )))
            }
        }
        // A rejected call ends with the server's `call_ended`.
        if accept {
            self.connect(call_id, Role::Callee).await;
        }
        Ok(())
    }

    /// Hangs up (or cancels a call still ringing).
    pub(crate) async fn hang_up(&self, call_id: &str) -> Result<(), ClientError> {
        let result = self
            .request(ClientMessage::CallHangup {
                id: request_id(),
                call_id: call_id.to_owned(),
            })
            .await;
        match result {
            Ok(ServerMessage::Ok { .. }) => {
                // The server's `call_ended` follows; ending here too makes hang-up instant.
                self.end_current(Some(call_id), CallEndReason::Hangup).await;
                Ok(())
            }
            Ok(other) => Err(ClientError::Protocol(format!(
                "unexpected reply to call_hangup: {other:?}"
            ))),
            // Already over on the server, or we cannot reach it: over here as well.
            Err(
                e @ ClientError::Server {
                    code: ErrorCode::NotFound,
                    ..
                },
            )
            | Err(e @ (ClientError::Offline | ClientError::Timeout)) => {
                self.end_current(Some(call_id), CallEndReason::Hangup).await;
                tracing::debug!(error = %e, "hang-up without the server");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Mutes or unmutes our microphone.
    pub(crate) async fn set_muted(&self, muted: bool) -> Option<CallInfo> {
        self.muted
            .store(muted, std::sync::atomic::Ordering::Relaxed);
        let mut current = self.current.lock().await;
        let c = current.as_mut()?;
        c.info.muted = muted;
        if let Some(s) = &c.session {
            s.set_muted(muted);
        }
        self.emit(&c.info);
        Some(c.info.clone())
    }

    /// The microphone level of the call in progress, 0.0–1.0.
    pub(crate) async fn input_level(&self) -> f32 {
        self.current
            .lock()
            .await
            .as_ref()
            .and_then(|c| c.session.as_ref())
            // A meter reads best in decibels: −60 dBFS (room noise) … 0 dBFS as 0 … 1.
            .map(|s| ((s.input_level().rms_dbfs() + 60.0) / 60.0).clamp(0.0, 1.0))
            .unwrap_or(0.0)
    }

    /// Media statistics of the call in progress.
    pub(crate) async fn stats(&self) -> Option<crate::voice::MediaStats> {
        self.current
            .lock()
            .await
            .as_ref()
            .and_then(|c| c.session.as_ref())
            .map(|s| s.stats())
    }

    fn take_ended_early(&self, call_id: &str) -> Option<CallEndReason> {
        let mut early = self.ended_early.lock().unwrap_or_else(|p| p.into_inner());
        let at = early.iter().position(|(id, _)| id == call_id)?;
        early.remove(at).map(|(_, reason)| reason)
    }

    async fn push(&self, push: ServerMessage) {
        match push {
            ServerMessage::CallIncoming {
                call_id,
                from,
                media,
            } => {
                let mut current = self.current.lock().await;
                if current.is_some() {
                    // The server never rings someone in a call; if it happens, say busy.
                    tracing::warn!(%call_id, "a call rang while another was in progress");
                    return;
                }
                self.muted
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                let info = CallInfo {
                    call_id,
                    peer: from,
                    outgoing: false,
                    phase: CallPhase::Ringing,
                    reason: None,
                    since: None,
                    muted: false,
                };
                *current = Some(Current {
                    info: info.clone(),
                    media: Some(media),
                    session: None,
                    peer_addr: None,
                });
                self.emit(&info);
            }
            ServerMessage::CallAccepted { call_id, media } => {
                {
                    let mut current = self.current.lock().await;
                    match current.as_mut() {
                        Some(c) if c.info.call_id == call_id => c.media = Some(media),
                        _ => return,
                    }
                }
                self.connect(&call_id, Role::Caller).await;
            }
            ServerMessage::CallPeer { call_id, peer_addr } => {
                let Ok(addr) = peer_addr.parse::<SocketAddr>() else {
                    tracing::warn!(%peer_addr, "unusable peer address");
                    return;
                };
                let mut current = self.current.lock().await;
                if let Some(c) = current.as_mut().filter(|c| c.info.call_id == call_id) {
                    c.peer_addr = Some(addr);
                    if let Some(s) = c.session.as_ref().filter(|_| self.direct_allowed()) {
                        s.set_peer(addr);
                    }
                }
            }
            ServerMessage::CallEnded { call_id, reason } => {
                let known = self
                    .current
                    .lock()
                    .await
                    .as_ref()
                    .is_some_and(|c| c.info.call_id == call_id);
                if known {
                    self.end_current(Some(&call_id), reason).await;
                } else {
                    let mut early = self.ended_early.lock().unwrap_or_else(|p| p.into_inner());
                    early.push_back((call_id, reason));
                    while early.len() > 8 {
                        early.pop_front();
                    }
                }
            }
            _ => {}
        }
    }

    /// Accepted: start the audio and go active.
    async fn connect(&self, call_id: &str, role: Role) {
        let media = {
            let mut current = self.current.lock().await;
            let Some(c) = current.as_mut().filter(|c| c.info.call_id == call_id) else {
                return;
            };
            c.info.phase = CallPhase::Connecting;
            self.emit(&c.info);
            c.media.clone()
        };
        let started = match media {
            Some(media) => self.start_media(&media, role).await,
            None => Err(ClientError::Protocol(
                "no media description for the call".into(),
            )),
        };
        let mut current = self.current.lock().await;
        let Some(c) = current.as_mut().filter(|c| c.info.call_id == call_id) else {
            // Ended while the audio started: stop it again.
            if let Ok(session) = started {
                drop(current);
                let _ = session.stop().await;
            }
            return;
        };
        match started {
            Ok(session) => {
                session.set_muted(self.muted.load(std::sync::atomic::Ordering::Relaxed));
                if let Some(addr) = c.peer_addr.filter(|_| self.direct_allowed()) {
                    session.set_peer(addr);
                }
                c.session = Some(session);
                c.info.phase = CallPhase::Active;
                c.info.since = Some(now_ms());
                self.emit(&c.info);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the call's audio");
                drop(current);
                let _ = self.hang_up(call_id).await;
            }
        }
    }

    async fn start_media(
        &self,
        media: &CallMedia,
        role: Role,
    ) -> Result<MediaSession, ClientError> {
        let token = natter_proto::media::token_bytes(&media.token)
            .ok_or_else(|| ClientError::Protocol("the call's token is not 32 hex digits".into()))?;
        let relay = tokio::net::lookup_host(&media.relay_addr)
            .await?
            .next()
            .ok_or_else(|| ClientError::Io(format!("cannot resolve {}", media.relay_addr)))?;
        let factory = self.audio.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (source, sink) = factory()?;
        let config = MediaConfig::new(token, role, relay);
        MediaSession::start(config, source, sink)
            .await
            .map_err(|e| ClientError::Io(format!("audio: {e}")))
    }

    /// Ends the current call (if it is `call_id`, or any when `None`) with `reason`.
    async fn end_current(&self, call_id: Option<&str>, reason: CallEndReason) {
        let ended = {
            let mut current = self.current.lock().await;
            match current.as_ref() {
                Some(c) if call_id.is_none_or(|id| c.info.call_id == id) => current.take(),
                _ => None,
            }
        };
        let Some(mut c) = ended else { return };
        if let Some(session) = c.session.take() {
            let stats = session.stop().await;
            tracing::info!(call_id = %c.info.call_id, ?stats, "call audio stopped");
        }
        c.info.phase = CallPhase::Ended;
        c.info.reason = Some(reason);
        self.emit(&c.info);
    }
}
