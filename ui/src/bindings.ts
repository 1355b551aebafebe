// Generated from the Rust types by src-tauri/src/bindings.rs. Do not edit:
// NATTER_WRITE_BINDINGS=1 cargo test -p natter-app bindings

export type ErrorCode = "frame_too_large" | "invalid_utf8" | "invalid_json" | "unknown_type" | "invalid_message" | "unexpected_binary" | "hello_required" | "unsupported_version" | "not_authenticated" | "already_authenticated" | "invalid_username" | "reserved_username" | "invalid_password" | "invalid_field" | "username_taken" | "bad_credentials" | "session_expired" | "no_such_user" | "already_friends" | "not_friends" | "request_pending" | "no_such_request" | "self_target" | "rate_limited" | "slow_down" | "forbidden" | "not_found" | "not_implemented" | "file_too_large" | "quota_exceeded" | "server_busy" | "internal";

export type Target = { "kind": "square" } | { "kind": "user", 
/**
 * The other participant.
 */
username: string, };

export type MessageBody = { "kind": "text", 
/**
 * The text.
 */
text: string, } | { "kind": "image", 
/**
 * The transfer that carries the full image.
 */
file_id: string, 
/**
 * Original file name.
 */
name: string, 
/**
 * `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
 */
mime: string, 
/**
 * Size of the full image in bytes.
 */
size: number, 
/**
 * Full image width in pixels.
 */
width: number, 
/**
 * Full image height in pixels.
 */
height: number, 
/**
 * Base64 of a small JPEG or PNG preview, at most 64 KiB decoded.
 */
thumbnail: string, 
/**
 * Lowercase hex SHA-256 of the full image as its sender offered it, so a receiver can
 * check the bytes it fetches. Set by the server from the transfer (whatever a client
 * put here is replaced); absent in messages stored before it existed.
 */
sha256?: string, } | { "kind": "file", 
/**
 * The transfer.
 */
file_id: string, 
/**
 * File name.
 */
name: string, 
/**
 * Size in bytes.
 */
size: number, 
/**
 * Hex SHA-256 of the whole file.
 */
sha256: string, };

export type Profile = { 
/**
 * Username as registered (case kept; unique case-insensitively).
 */
username: string, 
/**
 * Display name; empty if unset.
 */
nickname: string, 
/**
 * Motto / signature; empty if unset.
 */
motto: string, 
/**
 * Phone number; only ever sent to the user themself, empty for others.
 */
phone: string, 
/**
 * A guest account lives only as long as its session.
 */
is_guest: boolean, };

export type OnlineUser = { 
/**
 * Username.
 */
username: string, 
/**
 * Nickname, empty if unset.
 */
nickname: string, 
/**
 * Guest flag (seed 002's IsUserGuest).
 */
is_guest: boolean, };

export type Friend = { 
/**
 * Username.
 */
username: string, 
/**
 * Nickname, empty if unset.
 */
nickname: string, 
/**
 * Motto, empty if unset.
 */
motto: string, 
/**
 * Guest flag.
 */
is_guest: boolean, 
/**
 * Whether the friend is online now.
 */
online: boolean, };

export type FriendAnswer = { 
/**
 * Who answered.
 */
username: string, 
/**
 * Accepted or rejected.
 */
accepted: boolean, 
/**
 * The new friend, when accepted.
 */
friend: Friend | null, };

export type FriendRequestInfo = { 
/**
 * Who asked.
 */
from: string, 
/**
 * Who is asked.
 */
to: string, 
/**
 * The requester's note, possibly empty.
 */
message: string, 
/**
 * When it was sent.
 */
ts: number, };

export type ConnectionState = "offline" | "connecting" | "online";

export type MessageState = "sending" | "sent" | "delivered" | "failed" | "received";

export type LocalMessage = { 
/**
 * Server id, once the server stored it.
 */
msg_id: number | null, 
/**
 * The sender's id for it.
 */
client_msg_id: string, 
/**
 * Sender.
 */
from: string, 
/**
 * Sender is a guest.
 */
from_guest: boolean, 
/**
 * The square or the recipient.
 */
to: Target, 
/**
 * Server time (local time while sending).
 */
ts: number, 
/**
 * Content.
 */
body: MessageBody, 
/**
 * Delivery state.
 */
state: MessageState, 
/**
 * Why it failed, if it did.
 */
error: string | null, };

export type SearchHit = { 
/**
 * The message (its text is the context to show).
 */
message: LocalMessage, 
/**
 * The square, or the other participant.
 */
with: Target, };

export type Unread = { 
/**
 * The square, or the other participant.
 */
with: Target, 
/**
 * Received messages after the read mark.
 */
count: number, 
/**
 * The newest message read (0: none), where a "new messages" divider goes.
 */
read_up_to: number, 
/**
 * The newest message counted: a live message at or below it is already in `count`.
 */
newest: number, };

export type Direction = "up" | "down";

export type TransferState = "offered" | "uploading" | "uploaded" | "downloading" | "paused" | "done" | "rejected" | "cancelled" | "failed";

export type FileKind = "file" | "image";

export type TransferInfo = { 
/**
 * The server's id; the `file_id` of the chat message that shows it.
 */
file_id: string, 
/**
 * Sending or receiving.
 */
direction: Direction, 
/**
 * A file offer or the full image of an image message.
 */
kind: FileKind, 
/**
 * The conversation it belongs to.
 */
chat: Target, 
/**
 * The other party (the sender for downloads; the receiver, or `""` for the square).
 */
peer: string, 
/**
 * Sanitised file name.
 */
name: string, 
/**
 * Size in bytes.
 */
size: number, 
/**
 * Lowercase hex SHA-256 of the whole file.
 */
sha256: string, 
/**
 * Where it stands.
 */
state: TransferState, 
/**
 * Bytes transferred so far (on the server for uploads, on disk for downloads).
 */
done: number, 
/**
 * Current speed in bytes per second; 0 when not moving.
 */
rate: number, 
/**
 * The local file: the source of an upload, the destination of a download once chosen.
 */
path: string | null, 
/**
 * The receiver accepted (uploads), or we did (downloads).
 */
accepted: boolean, 
/**
 * Why it failed, for `failed`.
 */
error: string | null, 
/**
 * When it was created (ms since the epoch).
 */
ts: number, };

export type CallPhase = "calling" | "ringing" | "connecting" | "active" | "ended";

export type CallEndReason = "hangup" | "rejected" | "no_answer" | "busy" | "offline" | "connection_lost";

export type CallInfo = { 
/**
 * The server's id.
 */
call_id: string, 
/**
 * The other person.
 */
peer: string, 
/**
 * We called (`true`) or were called.
 */
outgoing: boolean, 
/**
 * Where it stands.
 */
phase: CallPhase, 
/**
 * Why it ended, once `ended`.
 */
reason: CallEndReason | null, 
/**
 * When audio started flowing (ms since the epoch), for the duration display.
 */
since: number | null, 
/**
 * Our microphone is muted.
 */
muted: boolean, };

export type AudioDevices = { 
/**
 * Microphones.
 */
inputs: Array<string>, 
/**
 * Speakers.
 */
outputs: Array<string>, 
/**
 * The system's default microphone.
 */
default_input: string | null, 
/**
 * The system's default speaker.
 */
default_output: string | null, };

export type ServerSettings = { 
/**
 * Host name or address.
 */
host: string, 
/**
 * TCP port (4004 plain, 4399 TLS by default).
 */
port: number, 
/**
 * Use TLS (the certificate is pinned on first use).
 */
tls: boolean, };

export type Theme = "system" | "light" | "dark";

export type Settings = { 
/**
 * The last server connected to.
 */
server: ServerSettings, 
/**
 * The last account that logged in with a password (resumed at start).
 */
last_user: string | null, 
/**
 * `en` or `zh-CN`; `None` follows the OS.
 */
language: string | null, 
/**
 * Colour scheme.
 */
theme: Theme, 
/**
 * Desktop notifications while the window is not focused.
 */
notifications: boolean, 
/**
 * Host a server on this computer, at every start, until the user stops it.
 */
hosting: boolean, 
/**
 * The microphone for calls, by name; `None` is the system default.
 */
audio_input: string | null, 
/**
 * The speaker for calls, by name; `None` is the system default.
 */
audio_output: string | null, };

export type AppInfo = { 
/**
 * Saved settings.
 */
settings: Settings, 
/**
 * App version.
 */
version: string, 
/**
 * The OS language tag (for `language: null`).
 */
os_language: string, 
/**
 * Where stores live (shown in settings).
 */
data_dir: string, };

export type ConnectInfo = { 
/**
 * The pinned certificate fingerprint (TLS), after the first contact.
 */
fingerprint: string | null, };

export type UsernameCheck = { 
/**
 * Free to register.
 */
available: boolean, 
/**
 * Why not (`username_taken`, `reserved_username`, `invalid_username`…).
 */
reason: ErrorCode | null, };

export type RegisterForm = { 
/**
 * Username (4–32 letters and digits).
 */
username: string, 
/**
 * Password (8–128 characters).
 */
password: string, 
/**
 * Nickname (optional).
 */
nickname: string, 
/**
 * Motto (optional).
 */
motto: string, 
/**
 * Phone (optional).
 */
phone: string, };

export type Session = { 
/**
 * Own profile.
 */
profile: Profile, 
/**
 * Online users.
 */
online: Array<OnlineUser>, 
/**
 * Friends with presence.
 */
friends: Array<Friend>, 
/**
 * Pending requests to us.
 */
incoming_requests: Array<FriendRequestInfo>, 
/**
 * Pending requests from us.
 */
outgoing_requests: Array<FriendRequestInfo>, 
/**
 * The server resumed an earlier session.
 */
resumed: boolean, 
/**
 * Opened from the local store while the server could not be reached
 * ([`Client::open_offline`]): profile and friends are from the last login, nobody is shown
 * online, and the engine logs in as soon as the server answers.
 */
offline: boolean, };

export type SentMessage = { 
/**
 * Sender's id of the message.
 */
client_msg_id: string, 
/**
 * Server id.
 */
msg_id: number, 
/**
 * Server time.
 */
ts: number, };

export type FailedMessage = { 
/**
 * Sender's id of the message.
 */
client_msg_id: string, 
/**
 * Why (wire code).
 */
code: ErrorCode, 
/**
 * Server's text.
 */
message: string, };

export type FriendList = { 
/**
 * Friends with presence.
 */
friends: Array<Friend>, 
/**
 * Pending requests to us.
 */
incoming: Array<FriendRequestInfo>, 
/**
 * Pending requests from us.
 */
outgoing: Array<FriendRequestInfo>, };

export type ProfileEdit = { 
/**
 * New nickname.
 */
nickname: string | null, 
/**
 * New motto.
 */
motto: string | null, 
/**
 * New phone.
 */
phone: string | null, };

export type HistoryWindow = { 
/**
 * The hit and the messages before it, oldest first.
 */
older: Array<LocalMessage>, 
/**
 * Messages after the hit, oldest first.
 */
newer: Array<LocalMessage>, };

export type LanServer = { 
/**
 * The DNS-SD instance name, unique on the LAN: the key to keep a list row by.
 */
id: string, 
/**
 * Name the host chose to be listed under.
 */
name: string, 
/**
 * The best address to reach it at (LAN IPv4 before IPv6 before loopback).
 */
host: string, 
/**
 * Every usable address it announced, best first (`host` is the first).
 */
addresses: Array<string>, 
/**
 * Plain TCP port.
 */
port: number, 
/**
 * TLS port: the one to connect to.
 */
tls_port: number, 
/**
 * Certificate fingerprint to pin (lowercase hex SHA-256); show it to the user.
 */
fingerprint: string, 
/**
 * Protocol version the server speaks.
 */
protocol_version: number, };

export type HostInfo = { 
/**
 * Name it is announced under.
 */
name: string, 
/**
 * `host:port` of the TLS listener on each address it can be reached at, LAN addresses
 * first and loopback last (the list is read from the interfaces on every call).
 */
addresses: Array<string>, 
/**
 * Plain TCP port in use.
 */
port: number, 
/**
 * TLS port in use.
 */
tls_port: number, 
/**
 * Certificate fingerprint (lowercase hex SHA-256 of its DER) for clients to pin.
 */
fingerprint: string, };

export type IpcError = { 
/**
 * Stable code for the UI to translate.
 */
code: string, 
/**
 * English detail (shown when the UI has no translation).
 */
message: string, 
/**
 * For `certificate_changed`: the new fingerprint to trust.
 */
fingerprint: string | null, };

export type AppEvent = { "type": "connection", 
/**
 * New state.
 */
state: ConnectionState, } | { "type": "logged_in", 
/**
 * The session as the server started it.
 */
session: Session, } | { "type": "message", 
/**
 * The message.
 */
message: LocalMessage, } | { "type": "sent" } & SentMessage | { "type": "failed" } & FailedMessage | { "type": "delivered", 
/**
 * Our id of it.
 */
client_msg_id: string, 
/**
 * Server id.
 */
msg_id: number, } | { "type": "user_online", 
/**
 * Who.
 */
user: OnlineUser, } | { "type": "user_offline", 
/**
 * Who.
 */
username: string, } | { "type": "friend_request", 
/**
 * The request.
 */
request: FriendRequestInfo, } | { "type": "friend_response" } & FriendAnswer | { "type": "friend_removed", 
/**
 * Who.
 */
username: string, } | { "type": "kicked", 
/**
 * Why.
 */
reason: string, } | { "type": "session_lost", 
/**
 * Why.
 */
error: IpcError, } | { "type": "certificate_changed", 
/**
 * Why (with the new fingerprint).
 */
error: IpcError, } | { "type": "transfer", 
/**
 * Where it stands now.
 */
transfer: TransferInfo, } | { "type": "call", 
/**
 * Where it stands now.
 */
call: CallInfo, } | { "type": "lan_servers", 
/**
 * All of them now.
 */
servers: Array<LanServer>, } | { "type": "server_error", 
/**
 * Why (wire code).
 */
code: ErrorCode, 
/**
 * Server's text.
 */
message: string, };

/** The event channel of AppEvent. */
export const EVENT = "natter://event";

/** The URI scheme that serves full images by file id (see image_protocol.rs). */
export const IMAGE_SCHEME = "natter-image";

/** Every command: its arguments and what it resolves to. */
export interface Commands {
  app_info: { args: Record<string, never>; result: AppInfo };
  save_settings: { args: { settings: Settings }; result: Settings };
  connect: { args: { server: ServerSettings }; result: ConnectInfo };
  accept_certificate: { args: { fingerprint: string }; result: null };
  check_username: { args: { username: string }; result: UsernameCheck };
  register: { args: { form: RegisterForm }; result: Profile };
  login: { args: { username: string; password: string }; result: Session };
  guest_login: { args: { username: string }; result: Session };
  resume: { args: { username: string }; result: Session };
  logout: { args: Record<string, never>; result: null };
  erase_account: { args: { password: string }; result: null };
  update_profile: { args: { edit: ProfileEdit }; result: Profile };
  online_users: { args: Record<string, never>; result: Array<OnlineUser> };
  friends: { args: Record<string, never>; result: FriendList };
  friend_request: { args: { to: string; message: string }; result: null };
  friend_respond: { args: { from: string; accept: boolean }; result: null };
  friend_delete: { args: { username: string }; result: null };
  send_text: { args: { to: Target; text: string }; result: LocalMessage };
  retry: { args: { client_msg_id: string }; result: null };
  unread: { args: Record<string, never>; result: Array<Unread> };
  mark_read: { args: { with: Target }; result: number };
  local_history: { args: { with: Target; before: number | null; limit: number }; result: Array<LocalMessage> };
  history: { args: { with: Target; before: number | null; limit: number }; result: Array<LocalMessage> };
  history_around: { args: { with: Target; msg_id: number; limit: number }; result: HistoryWindow };
  history_after: { args: { with: Target; after: number; limit: number }; result: Array<LocalMessage> };
  search: { args: { query: string; limit: number }; result: Array<SearchHit> };
  send_file: { args: { to: string; path: string }; result: TransferInfo };
  send_image: { args: { to: Target; path: string }; result: TransferInfo };
  accept_file: { args: { file_id: string; dest: string | null }; result: TransferInfo | null };
  reject_file: { args: { file_id: string }; result: null };
  pause_transfer: { args: { file_id: string }; result: TransferInfo };
  resume_transfer: { args: { file_id: string }; result: TransferInfo };
  cancel_transfer: { args: { file_id: string }; result: null };
  image_problem: { args: { file_id: string }; result: null };
  transfers: { args: Record<string, never>; result: Array<TransferInfo> };
  pick_files: { args: { images_only: boolean }; result: Array<string> };
  show_transfer: { args: { file_id: string }; result: null };
  call: { args: { to: string }; result: CallInfo };
  answer_call: { args: { call_id: string; accept: boolean }; result: null };
  hang_up: { args: { call_id: string }; result: null };
  set_muted: { args: { muted: boolean }; result: CallInfo | null };
  current_call: { args: Record<string, never>; result: CallInfo | null };
  call_level: { args: Record<string, never>; result: number };
  audio_devices: { args: Record<string, never>; result: AudioDevices };
  set_audio_devices: { args: { input: string | null; output: string | null }; result: Settings };
  lan_servers: { args: Record<string, never>; result: Array<LanServer> };
  host_info: { args: Record<string, never>; result: HostInfo | null };
  host_start: { args: Record<string, never>; result: HostInfo };
  host_stop: { args: Record<string, never>; result: null };
  connect_lan: { args: { server: LanServer }; result: ConnectInfo };
}

/** Commands whose body is raw bytes: their headers (values URI-encoded; JSON for objects) and what they resolve to. */
export interface RawCommands {
  send_image_data: { headers: { "natter-to": Target; "natter-name": string }; result: TransferInfo };
}
