//! Every message of the protocol, one variant each of [`ClientMessage`] (client → server) and
//! [`ServerMessage`] (server → client), tagged by `type`. Requests carry the client's `id`;
//! replies echo it; pushes carry none.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// A client-chosen request id (a UUID is a good choice), echoed by the reply. 1–64 characters.
pub type RequestId = String;
/// Server-assigned message id: increases with every stored message, across all conversations.
pub type MsgId = i64;
/// Milliseconds since the Unix epoch, server clock.
pub type Millis = i64;

/// Which presence pushes a connection wants (`hello.presence`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceScope {
    /// Every user's login and logout, and the full online list at login (seed 002).
    #[default]
    All,
    /// Only friends' logins and logouts; `online` lists only friends (for very large servers).
    Friends,
}

/// Where a chat message goes, or which conversation history is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The public room of all online users.
    Square,
    /// A private conversation with this user.
    User {
        /// The other participant.
        username: String,
    },
}

/// The content of a chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageBody {
    /// UTF-8 text, 1–16,384 bytes.
    Text {
        /// The text.
        text: String,
    },
    /// An image: inline thumbnail, full image by file transfer (issue 7).
    Image {
        /// The transfer that carries the full image.
        file_id: String,
        /// Original file name.
        name: String,
        /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
        mime: String,
        /// Size of the full image in bytes.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        size: u64,
        /// Full image width in pixels.
        width: u32,
        /// Full image height in pixels.
        height: u32,
        /// Base64 of a small JPEG or PNG preview, at most 64 KiB decoded.
        thumbnail: String,
        /// Lowercase hex SHA-256 of the full image as its sender offered it, so a receiver can
        /// check the bytes it fetches. Set by the server from the transfer (whatever a client
        /// put here is replaced); absent in messages stored before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        sha256: Option<String>,
    },
    /// A file that was offered and accepted (issue 7).
    File {
        /// The transfer.
        file_id: String,
        /// File name.
        name: String,
        /// Size in bytes.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        size: u64,
        /// Hex SHA-256 of the whole file.
        sha256: String,
    },
}

/// A stored chat message as the server hands it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Server id; orders messages.
    pub msg_id: MsgId,
    /// The sender's own id for this message (its idempotency key).
    pub client_msg_id: String,
    /// Sender's username (always the sender's session, never a claimed name).
    pub from: String,
    /// Whether the sender was a guest.
    pub from_guest: bool,
    /// The square, or the recipient.
    pub to: Target,
    /// Server time when the message was stored.
    pub ts: Millis,
    /// Content.
    pub body: MessageBody,
}

/// The other side's answer to a friend request this user sent (`friend_response`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FriendAnswer {
    /// Who answered.
    pub username: String,
    /// Accepted or rejected.
    pub accepted: bool,
    /// The new friend, when accepted.
    pub friend: Option<Friend>,
}

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Profile {
    /// Username as registered (case kept; unique case-insensitively).
    pub username: String,
    /// Display name; empty if unset.
    pub nickname: String,
    /// Motto / signature; empty if unset.
    pub motto: String,
    /// Phone number; only ever sent to the user themself, empty for others.
    pub phone: String,
    /// A guest account lives only as long as its session.
    pub is_guest: bool,
}

/// An online user in lists and presence pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OnlineUser {
    /// Username.
    pub username: String,
    /// Nickname, empty if unset.
    pub nickname: String,
    /// Guest flag (seed 002's IsUserGuest).
    pub is_guest: bool,
}

/// A friend with their presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Friend {
    /// Username.
    pub username: String,
    /// Nickname, empty if unset.
    pub nickname: String,
    /// Motto, empty if unset.
    pub motto: String,
    /// Guest flag.
    pub is_guest: bool,
    /// Whether the friend is online now.
    pub online: bool,
}

/// A pending friend request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FriendRequestInfo {
    /// Who asked.
    pub from: String,
    /// Who is asked.
    pub to: String,
    /// The requester's note, possibly empty.
    pub message: String,
    /// When it was sent.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub ts: Millis,
}

/// A contiguous byte range `[start, end)` of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// What a transfer carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A file offered to one user, who accepts or rejects it.
    #[default]
    File,
    /// The full image behind an `image` chat message; no answer needed.
    Image,
}

/// A file offer as shown to its receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOfferInfo {
    /// Server-assigned id.
    pub file_id: String,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Sanitised file name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the whole file.
    pub sha256: String,
    /// When it was offered.
    pub ts: Millis,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// A participant hung up.
    Hangup,
    /// The callee declined.
    Rejected,
    /// Nobody answered in time.
    NoAnswer,
    /// The callee is in another call.
    Busy,
    /// The callee is offline.
    Offline,
    /// A participant's connection dropped.
    ConnectionLost,
}

/// Where to send a call's audio (issue 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMedia {
    /// The peer's address as the server saw it (for a direct path), `ip:port`.
    pub peer_addr: Option<String>,
    /// The server's UDP relay, `host:port`.
    pub relay_addr: String,
    /// Per-call token that every relayed packet must carry, hex.
    pub token: String,
}

/// Client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message of every connection.
    Hello {
        /// Request id.
        id: RequestId,
        /// [`crate::MIN_PROTOCOL_VERSION`] to [`crate::PROTOCOL_VERSION`].
        version: u32,
        /// Free-form client name and version, for logs.
        #[serde(default)]
        client: String,
        /// Which presence pushes this connection wants.
        #[serde(default)]
        presence: PresenceScope,
    },
    /// Is this username free to register or to take as a guest? (seed 004 `query`)
    QueryUsername {
        /// Request id.
        id: RequestId,
        /// Candidate username.
        username: String,
    },
    /// Create an account (seeds 001, 002, 004).
    Register {
        /// Request id.
        id: RequestId,
        /// Letters and digits, 4–32.
        username: String,
        /// 8–128 characters.
        password: String,
        /// Optional display name.
        #[serde(default)]
        nickname: String,
        /// Optional motto.
        #[serde(default)]
        motto: String,
        /// Optional phone number.
        #[serde(default)]
        phone: String,
    },
    /// Password login.
    Login {
        /// Request id.
        id: RequestId,
        /// Username (any case).
        username: String,
        /// Password.
        password: String,
    },
    /// Login without an account under a free name (seed 002).
    GuestLogin {
        /// Request id.
        id: RequestId,
        /// Wanted guest name; same rules as usernames.
        username: String,
    },
    /// Continue a session after a reconnect.
    Resume {
        /// Request id.
        id: RequestId,
        /// Token from `login_ok`.
        token: String,
    },
    /// End the session (seed 002 `03`, seed 004 `logoff`).
    Logout {
        /// Request id.
        id: RequestId,
    },
    /// Delete the account and everything the server keeps of it (seed 004 `erase`).
    EraseAccount {
        /// Request id.
        id: RequestId,
        /// Current password.
        password: String,
    },
    /// Change profile fields; absent fields stay as they are.
    UpdateProfile {
        /// Request id.
        id: RequestId,
        /// New nickname.
        #[serde(default)]
        nickname: Option<String>,
        /// New motto.
        #[serde(default)]
        motto: Option<String>,
        /// New phone.
        #[serde(default)]
        phone: Option<String>,
    },
    /// Liveness probe; answered by `heartbeat_ack`.
    Heartbeat {
        /// Request id.
        id: RequestId,
    },
    /// Who is online (seed 003 `1001`).
    ListOnline {
        /// Request id.
        id: RequestId,
    },
    /// Ask someone to be friends (seed 004 `add_friend`).
    FriendRequest {
        /// Request id.
        id: RequestId,
        /// The user asked.
        to: String,
        /// A note, up to 256 characters.
        #[serde(default)]
        message: String,
    },
    /// Accept or reject a pending request (seed 004 `confirm_friend`).
    FriendRespond {
        /// Request id.
        id: RequestId,
        /// The requester.
        from: String,
        /// Accept (true) or reject (false).
        accept: bool,
    },
    /// End a friendship (seed 004 `delete_friend`).
    FriendDelete {
        /// Request id.
        id: RequestId,
        /// The friend.
        username: String,
    },
    /// Friends with presence, plus pending requests (seed 004 `list_friend`).
    FriendList {
        /// Request id.
        id: RequestId,
    },
    /// Send a chat message; answered by `message_accepted` once it is stored.
    SendMessage {
        /// Request id.
        id: RequestId,
        /// The client's id for this message, 1–64 characters; resending it is harmless.
        client_msg_id: String,
        /// The square or a user.
        to: Target,
        /// Content.
        body: MessageBody,
    },
    /// The client has stored these pushed private messages; the senders get `delivered`.
    Ack {
        /// Request id; without one the server sends no `ok` (a quiet ack, §5.5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Ids of `message` pushes received.
        msg_ids: Vec<MsgId>,
    },
    /// Page backwards through a conversation (seed 003 `1003`).
    History {
        /// Request id.
        id: RequestId,
        /// The square or the other participant.
        with: Target,
        /// Only messages older than this id; newest page if absent.
        #[serde(default)]
        before: Option<MsgId>,
        /// Page size, 1–200, default 50.
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Open a transfer: a file offered to a user (seed 001 `file`, seed 003 `7000`), or the full
    /// image behind an `image` message (to a user or the square).
    FileOffer {
        /// Request id.
        id: RequestId,
        /// Receiver: a user, or the square for images.
        to: Target,
        /// File name.
        name: String,
        /// Size in bytes.
        size: u64,
        /// Hex SHA-256 of the whole file. Absent: the sender sends it with `file_complete`
        /// once computed, so the upload need not wait for a first pass over the file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// What the transfer is for; `file` when absent.
        #[serde(default)]
        kind: FileKind,
    },
    /// Receiver accepts or rejects an offer (seed 001 accept / reject).
    FileAnswer {
        /// Request id.
        id: RequestId,
        /// The offer.
        file_id: String,
        /// Accept or reject.
        accept: bool,
    },
    /// What does the server hold of this file? (seed 003 `4001` / `8000` chunk map)
    FileStatus {
        /// Request id.
        id: RequestId,
        /// The file.
        file_id: String,
    },
    /// Upload bytes at an offset; the next frame is a binary frame of exactly `len` bytes
    /// (seed 003 `7001`).
    FileChunk {
        /// Request id.
        id: RequestId,
        /// The file.
        file_id: String,
        /// Where the bytes go.
        offset: u64,
        /// How many bytes follow.
        len: u32,
    },
    /// The sender names the SHA-256 of an upload offered without one; the server verifies the
    /// bytes against it once every byte is stored (seed 003 `7010`, the sender finished).
    FileComplete {
        /// Request id.
        id: RequestId,
        /// The file.
        file_id: String,
        /// Lowercase hex SHA-256 of the whole file.
        sha256: String,
    },
    /// Download a range; the server answers with `file_data` frames (seed 001 `file-data`).
    FileFetch {
        /// Request id.
        id: RequestId,
        /// The file.
        file_id: String,
        /// First byte wanted.
        offset: u64,
        /// How many bytes; to the end if absent.
        #[serde(default)]
        len: Option<u64>,
    },
    /// Stop a transfer for good, either side (seed 003 `7070` / `7080`).
    FileCancel {
        /// Request id.
        id: RequestId,
        /// The file.
        file_id: String,
    },
    /// Ring a user (seed 001 `voice request`).
    CallInvite {
        /// Request id.
        id: RequestId,
        /// Callee.
        to: String,
    },
    /// Callee accepts or rejects (seed 001 `voice accept`).
    CallAnswer {
        /// Request id.
        id: RequestId,
        /// The call.
        call_id: String,
        /// Accept or reject.
        accept: bool,
    },
    /// Either side ends or cancels the call (seed 001 `voice close`).
    CallHangup {
        /// Request id.
        id: RequestId,
        /// The call.
        call_id: String,
    },
}

/// Server → client: replies (with `id`) and pushes (without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Reply to `hello`.
    HelloOk {
        /// Echoed request id.
        id: RequestId,
        /// Server's protocol version.
        version: u32,
        /// Server software name and version.
        server: String,
        /// Send something (at worst a `heartbeat`) at least this often.
        heartbeat_interval_ms: u64,
        /// A side that hears nothing for this long drops the connection.
        idle_timeout_ms: u64,
        /// Largest frame payload accepted.
        max_frame_bytes: u64,
        /// How often batched `presence` pushes go out (version 2, `presence: "all"`).
        #[serde(default)]
        presence_interval_ms: u64,
    },
    /// Generic success reply.
    Ok {
        /// Echoed request id.
        id: RequestId,
    },
    /// Failure reply, or a connection-level error (`id` null when the request had none).
    Error {
        /// Echoed request id, when known.
        id: Option<RequestId>,
        /// Stable code.
        code: ErrorCode,
        /// Human-readable English detail.
        message: String,
        /// For `rate_limited`: when to retry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Reply to `query_username`.
    UsernameStatus {
        /// Echoed request id.
        id: RequestId,
        /// The name asked about.
        username: String,
        /// Free to register or take as a guest.
        available: bool,
        /// Why not, if not.
        reason: Option<ErrorCode>,
    },
    /// Reply to `register`.
    Registered {
        /// Echoed request id.
        id: RequestId,
        /// The new account.
        profile: Profile,
    },
    /// Reply to `login`, `guest_login` and `resume`.
    LoginOk {
        /// Echoed request id.
        id: RequestId,
        /// Session token for `resume`: 256 random bits, base64url.
        token: String,
        /// The user's own profile.
        profile: Profile,
        /// Online users (all, or friends only, per `hello.presence`), the user included.
        online: Vec<OnlineUser>,
        /// How many users are online in all.
        online_count: u64,
        /// Friends with presence.
        friends: Vec<Friend>,
        /// Pending requests to this user.
        incoming_requests: Vec<FriendRequestInfo>,
        /// Pending requests from this user.
        outgoing_requests: Vec<FriendRequestInfo>,
        /// True for `resume`: the session continues where it was.
        resumed: bool,
    },
    /// Reply to `update_profile`.
    ProfileUpdated {
        /// Echoed request id.
        id: RequestId,
        /// The profile now.
        profile: Profile,
    },
    /// Reply to `heartbeat`.
    HeartbeatAck {
        /// Echoed request id.
        id: RequestId,
        /// Server clock.
        ts: Millis,
    },
    /// Reply to `list_online`.
    OnlineList {
        /// Echoed request id.
        id: RequestId,
        /// Online users.
        users: Vec<OnlineUser>,
    },
    /// Reply to `friend_list`.
    FriendListReply {
        /// Echoed request id.
        id: RequestId,
        /// Friends with presence.
        friends: Vec<Friend>,
        /// Pending requests to this user.
        incoming_requests: Vec<FriendRequestInfo>,
        /// Pending requests from this user.
        outgoing_requests: Vec<FriendRequestInfo>,
    },
    /// Reply to `send_message`: the message is stored (the "sent" receipt).
    MessageAccepted {
        /// Echoed request id.
        id: RequestId,
        /// The client's message id.
        client_msg_id: String,
        /// Server id.
        msg_id: MsgId,
        /// Server timestamp.
        ts: Millis,
        /// True when this client message id was already stored: nothing new was sent.
        duplicate: bool,
    },
    /// Reply to `history`: oldest first.
    HistoryPage {
        /// Echoed request id.
        id: RequestId,
        /// The conversation.
        with: Target,
        /// Messages in ascending `msg_id`.
        messages: Vec<ChatMessage>,
        /// Whether older messages exist.
        has_more: bool,
    },
    /// Reply to `file_offer`.
    FileOfferCreated {
        /// Echoed request id.
        id: RequestId,
        /// New file id.
        file_id: String,
        /// Suggested chunk size (seed 003 `suggest_chunksize`).
        chunk_size: u32,
    },
    /// Reply to `file_status`: what the server holds.
    FileStatusReply {
        /// Echoed request id.
        id: RequestId,
        /// The file.
        file_id: String,
        /// Size in bytes.
        size: u64,
        /// Suggested chunk size.
        chunk_size: u32,
        /// Byte ranges stored, ascending and disjoint.
        have: Vec<ByteRange>,
        /// All bytes stored and the SHA-256 verified.
        complete: bool,
        /// The receiver accepted (always `true` for images).
        accepted: bool,
        /// Lowercase hex SHA-256 the file was offered with (what a receiver checks its bytes
        /// against); empty from a server that predates it.
        #[serde(default)]
        sha256: String,
    },
    /// Header of downloaded bytes; a binary frame of `len` bytes follows.
    FileData {
        /// Echoed request id of the `file_fetch`.
        id: RequestId,
        /// The file.
        file_id: String,
        /// Offset of the bytes that follow.
        offset: u64,
        /// Byte count of the binary frame that follows.
        len: u32,
    },
    /// Reply to `call_invite`: the callee's phone is ringing.
    CallRinging {
        /// Echoed request id.
        id: RequestId,
        /// New call id.
        call_id: String,
    },
    /// Push: the server's own liveness probe; needs no answer.
    Heartbeat {
        /// Server clock.
        ts: Millis,
    },
    /// Push: a user came online (seed 000 `new_friend_login`, seed 002 `30`).
    UserOnline {
        /// Who.
        user: OnlineUser,
    },
    /// Push: a user went offline, by logout or lost connection (seed 002 `31`).
    UserOffline {
        /// Who.
        username: String,
    },
    /// Push (version 2, `presence: "all"`): the presence changes of one interval, applied in
    /// order on top of what the client knows (`online` added or replaced, `offline` removed).
    Presence {
        /// Users who came online (or changed their nickname).
        online: Vec<OnlineUser>,
        /// Usernames that went offline.
        offline: Vec<String>,
    },
    /// Push: a friend request arrived (also delivered at the next login).
    FriendRequestReceived {
        /// The request.
        request: FriendRequestInfo,
    },
    /// Push: the other side answered a friend request this user sent.
    FriendResponse(FriendAnswer),
    /// Push: a friend removed this user.
    FriendRemoved {
        /// Former friend.
        username: String,
    },
    /// Push: a chat message (private or square). Private ones are pushed until acked.
    Message {
        /// The message.
        message: ChatMessage,
    },
    /// Push: a private message reached the recipient's device.
    Receipt {
        /// Server id.
        msg_id: MsgId,
        /// The sender's id of the message.
        client_msg_id: String,
        /// The recipient.
        to: String,
        /// When the recipient acked.
        ts: Millis,
    },
    /// Push: this session was ended by a newer login elsewhere or by the server.
    Kicked {
        /// `logged_in_elsewhere` or `shutdown`.
        reason: String,
    },
    /// Push: someone offers a file.
    FileOffered {
        /// The offer.
        offer: FileOfferInfo,
    },
    /// Push: the receiver answered a file offer.
    FileAnswered {
        /// The file.
        file_id: String,
        /// Accepted or rejected.
        accepted: bool,
    },
    /// Push: a transfer was cancelled by the other side or expired.
    FileCancelled {
        /// The file.
        file_id: String,
    },
    /// Push: someone is calling.
    CallIncoming {
        /// The call.
        call_id: String,
        /// Caller.
        from: String,
        /// Where to send audio once accepted.
        media: CallMedia,
    },
    /// Push: the callee accepted.
    CallAccepted {
        /// The call.
        call_id: String,
        /// Where to send audio.
        media: CallMedia,
    },
    /// Push: both sides' UDP addresses are known to the relay; here is the other's, for a
    /// direct path.
    CallPeer {
        /// The call.
        call_id: String,
        /// The other participant's address as the relay observed it, `ip:port`.
        peer_addr: String,
    },
    /// Push: the call is over.
    CallEnded {
        /// The call.
        call_id: String,
        /// Why.
        reason: CallEndReason,
    },
}

impl ClientMessage {
    /// The request id; only a quiet `ack` has none.
    pub fn id(&self) -> Option<&str> {
        use ClientMessage::*;
        match self {
            Hello { id, .. }
            | QueryUsername { id, .. }
            | Register { id, .. }
            | Login { id, .. }
            | GuestLogin { id, .. }
            | Resume { id, .. }
            | Logout { id }
            | EraseAccount { id, .. }
            | UpdateProfile { id, .. }
            | Heartbeat { id }
            | ListOnline { id }
            | FriendRequest { id, .. }
            | FriendRespond { id, .. }
            | FriendDelete { id, .. }
            | FriendList { id }
            | SendMessage { id, .. }
            | History { id, .. }
            | FileOffer { id, .. }
            | FileAnswer { id, .. }
            | FileStatus { id, .. }
            | FileChunk { id, .. }
            | FileComplete { id, .. }
            | FileFetch { id, .. }
            | FileCancel { id, .. }
            | CallInvite { id, .. }
            | CallAnswer { id, .. }
            | CallHangup { id, .. } => Some(id),
            Ack { id, .. } => id.as_deref(),
        }
    }
}

impl ServerMessage {
    /// The echoed request id of a reply; `None` for pushes.
    pub fn reply_id(&self) -> Option<&str> {
        use ServerMessage::*;
        match self {
            HelloOk { id, .. }
            | Ok { id }
            | UsernameStatus { id, .. }
            | Registered { id, .. }
            | LoginOk { id, .. }
            | ProfileUpdated { id, .. }
            | HeartbeatAck { id, .. }
            | OnlineList { id, .. }
            | FriendListReply { id, .. }
            | MessageAccepted { id, .. }
            | HistoryPage { id, .. }
            | FileOfferCreated { id, .. }
            | FileStatusReply { id, .. }
            | FileData { id, .. }
            | CallRinging { id, .. } => Some(id),
            Error { id, .. } => id.as_deref(),
            Heartbeat { .. }
            | UserOnline { .. }
            | UserOffline { .. }
            | Presence { .. }
            | FriendRequestReceived { .. }
            | FriendResponse(_)
            | FriendRemoved { .. }
            | Message { .. }
            | Receipt { .. }
            | Kicked { .. }
            | FileOffered { .. }
            | FileAnswered { .. }
            | FileCancelled { .. }
            | CallIncoming { .. }
            | CallAccepted { .. }
            | CallPeer { .. }
            | CallEnded { .. } => None,
        }
    }

    /// Builds an error reply.
    pub fn error(id: Option<&str>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            id: id.map(str::to_owned),
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

/// `type` values of [`ClientMessage`], for telling an unknown type from a malformed message.
pub const CLIENT_TYPES: &[&str] = &[
    "hello",
    "query_username",
    "register",
    "login",
    "guest_login",
    "resume",
    "logout",
    "erase_account",
    "update_profile",
    "heartbeat",
    "list_online",
    "friend_request",
    "friend_respond",
    "friend_delete",
    "friend_list",
    "send_message",
    "ack",
    "history",
    "file_offer",
    "file_answer",
    "file_status",
    "file_chunk",
    "file_complete",
    "file_fetch",
    "file_cancel",
    "call_invite",
    "call_answer",
    "call_hangup",
];

/// `type` values of [`ServerMessage`].
pub const SERVER_TYPES: &[&str] = &[
    "hello_ok",
    "ok",
    "error",
    "username_status",
    "registered",
    "login_ok",
    "profile_updated",
    "heartbeat_ack",
    "online_list",
    "friend_list_reply",
    "message_accepted",
    "history_page",
    "file_offer_created",
    "file_status_reply",
    "file_data",
    "call_ringing",
    "heartbeat",
    "user_online",
    "user_offline",
    "presence",
    "friend_request_received",
    "friend_response",
    "friend_removed",
    "message",
    "receipt",
    "kicked",
    "file_offered",
    "file_answered",
    "file_cancelled",
    "call_incoming",
    "call_accepted",
    "call_peer",
    "call_ended",
];
