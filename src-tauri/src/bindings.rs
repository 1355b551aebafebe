//! Generates `ui/src/bindings.ts`: the TypeScript declarations of every IPC type (from the Rust
//! types, via ts-rs) and a `Commands` map of each command's arguments and result, so the UI's
//! `invoke` wrapper is typed end to end. `cargo test -p natter-app bindings` fails when the
//! committed file is stale; `NATTER_WRITE_BINDINGS=1` rewrites it.

use natter_core::calls::{CallInfo, CallPhase};
use natter_core::lan::{HostInfo, LanServer};
use natter_core::{
    AudioDevices, ConnectionState, Direction, FailedMessage, FriendList, HistoryWindow,
    LocalMessage, LoginInfo, MessageState, Registration, SearchHit, SentMessage, TransferInfo,
    TransferState, Unread,
};
use natter_proto::{
    CallEndReason, ErrorCode, FileKind, Friend, FriendAnswer, FriendRequestInfo, MessageBody,
    OnlineUser, Profile, Target,
};
use ts_rs::TS;

use crate::ipc::{
    AppEvent, AppInfo, ConnectInfo, IpcError, ProfileEdit, ServerSettings, Settings, Theme,
    UsernameCheck,
};

fn decl<T: TS>() -> String {
    format!("export {}", T::decl())
}

fn array<T: TS>() -> String {
    format!("Array<{}>", T::name())
}

/// A command's name, its `(argument, TS type)` pairs and its result's TS type.
type CommandSig = (&'static str, Vec<(&'static str, String)>, String);

/// Every command, in `generate_handler!` order.
fn commands() -> Vec<CommandSig> {
    let s = || "string".to_owned();
    let n = || "number".to_owned();
    let unit = || "null".to_owned();
    let target = Target::name;
    vec![
        ("app_info", vec![], AppInfo::name()),
        (
            "save_settings",
            vec![("settings", Settings::name())],
            Settings::name(),
        ),
        (
            "connect",
            vec![("server", ServerSettings::name())],
            ConnectInfo::name(),
        ),
        ("accept_certificate", vec![("fingerprint", s())], unit()),
        (
            "check_username",
            vec![("username", s())],
            UsernameCheck::name(),
        ),
        (
            "register",
            vec![("form", Registration::name())],
            Profile::name(),
        ),
        (
            "login",
            vec![("username", s()), ("password", s())],
            LoginInfo::name(),
        ),
        ("guest_login", vec![("username", s())], LoginInfo::name()),
        ("resume", vec![("username", s())], LoginInfo::name()),
        ("logout", vec![], unit()),
        ("erase_account", vec![("password", s())], unit()),
        (
            "update_profile",
            vec![("edit", ProfileEdit::name())],
            Profile::name(),
        ),
        ("online_users", vec![], array::<OnlineUser>()),
        ("friends", vec![], FriendList::name()),
        (
            "friend_request",
            vec![("to", s()), ("message", s())],
            unit(),
        ),
        (
            "friend_respond",
            vec![("from", s()), ("accept", "boolean".into())],
            unit(),
        ),
        ("friend_delete", vec![("username", s())], unit()),
        (
            "send_text",
            vec![("to", target()), ("text", s())],
            LocalMessage::name(),
        ),
        ("retry", vec![("client_msg_id", s())], unit()),
        ("unread", vec![], array::<Unread>()),
        ("mark_read", vec![("with", target())], n()),
        (
            "local_history",
            vec![
                ("with", target()),
                ("before", "number | null".into()),
                ("limit", n()),
            ],
            array::<LocalMessage>(),
        ),
        (
            "history",
            vec![
                ("with", target()),
                ("before", "number | null".into()),
                ("limit", n()),
            ],
            array::<LocalMessage>(),
        ),
        (
            "history_around",
            vec![("with", target()), ("msg_id", n()), ("limit", n())],
            HistoryWindow::name(),
        ),
        (
            "history_after",
            vec![("with", target()), ("after", n()), ("limit", n())],
            array::<LocalMessage>(),
        ),
        (
            "search",
            vec![("query", s()), ("limit", n())],
            array::<SearchHit>(),
        ),
        (
            "send_file",
            vec![("to", s()), ("path", s())],
            TransferInfo::name(),
        ),
        (
            "send_image",
            vec![("to", target()), ("path", s())],
            TransferInfo::name(),
        ),
        // send_image_data takes raw bytes: see RAW_COMMANDS.
        (
            "accept_file",
            vec![("file_id", s()), ("dest", "string | null".into())],
            format!("{} | null", TransferInfo::name()),
        ),
        ("reject_file", vec![("file_id", s())], unit()),
        (
            "pause_transfer",
            vec![("file_id", s())],
            TransferInfo::name(),
        ),
        (
            "resume_transfer",
            vec![("file_id", s())],
            TransferInfo::name(),
        ),
        ("cancel_transfer", vec![("file_id", s())], unit()),
        ("image_problem", vec![("file_id", s())], unit()),
        ("transfers", vec![], array::<TransferInfo>()),
        (
            "pick_files",
            vec![("images_only", "boolean".into())],
            "Array<string>".into(),
        ),
        ("show_transfer", vec![("file_id", s())], unit()),
        ("call", vec![("to", s())], CallInfo::name()),
        (
            "answer_call",
            vec![("call_id", s()), ("accept", "boolean".into())],
            unit(),
        ),
        ("hang_up", vec![("call_id", s())], unit()),
        (
            "set_muted",
            vec![("muted", "boolean".into())],
            format!("{} | null", CallInfo::name()),
        ),
        (
            "current_call",
            vec![],
            format!("{} | null", CallInfo::name()),
        ),
        ("call_level", vec![], n()),
        ("audio_devices", vec![], AudioDevices::name()),
        (
            "set_audio_devices",
            vec![
                ("input", "string | null".into()),
                ("output", "string | null".into()),
            ],
            Settings::name(),
        ),
        ("lan_servers", vec![], array::<LanServer>()),
        ("host_info", vec![], format!("{} | null", HostInfo::name())),
        ("host_start", vec![], HostInfo::name()),
        ("host_stop", vec![], unit()),
        (
            "connect_lan",
            vec![("server", LanServer::name())],
            ConnectInfo::name(),
        ),
    ]
}

/// Commands whose body is raw bytes, with their headers (URI-encoded values) and result.
fn raw_commands() -> Vec<CommandSig> {
    vec![(
        "send_image_data",
        vec![
            (crate::files::HEADER_TO, Target::name()),
            (crate::files::HEADER_NAME, "string".into()),
        ],
        TransferInfo::name(),
    )]
}

/// The whole generated file.
pub fn typescript() -> String {
    let mut out = String::from(
        "// Generated from the Rust types by src-tauri/src/bindings.rs. Do not edit:\n\
         // NATTER_WRITE_BINDINGS=1 cargo test -p natter-app bindings\n\n",
    );
    let decls = [
        decl::<ErrorCode>(),
        decl::<Target>(),
        decl::<MessageBody>(),
        decl::<Profile>(),
        decl::<OnlineUser>(),
        decl::<Friend>(),
        decl::<FriendAnswer>(),
        decl::<FriendRequestInfo>(),
        decl::<ConnectionState>(),
        decl::<MessageState>(),
        decl::<LocalMessage>(),
        decl::<SearchHit>(),
        decl::<Unread>(),
        decl::<Direction>(),
        decl::<TransferState>(),
        decl::<FileKind>(),
        decl::<TransferInfo>(),
        decl::<CallPhase>(),
        decl::<CallEndReason>(),
        decl::<CallInfo>(),
        decl::<AudioDevices>(),
        decl::<ServerSettings>(),
        decl::<Theme>(),
        decl::<Settings>(),
        decl::<AppInfo>(),
        decl::<ConnectInfo>(),
        decl::<UsernameCheck>(),
        decl::<Registration>(),
        decl::<LoginInfo>(),
        decl::<SentMessage>(),
        decl::<FailedMessage>(),
        decl::<FriendList>(),
        decl::<ProfileEdit>(),
        decl::<HistoryWindow>(),
        decl::<LanServer>(),
        decl::<HostInfo>(),
        decl::<IpcError>(),
        decl::<AppEvent>(),
    ];
    for d in decls {
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "/** The event channel of {}. */\nexport const EVENT = \"{}\";\n\n",
        AppEvent::name(),
        crate::EVENT
    ));
    out.push_str(&format!(
        "/** The URI scheme that serves full images by file id (see image_protocol.rs). */\n\
         export const IMAGE_SCHEME = \"{}\";\n\n",
        crate::image_protocol::SCHEME
    ));
    out.push_str("/** Every command: its arguments and what it resolves to. */\nexport interface Commands {\n");
    for (name, args, result) in commands() {
        let args = if args.is_empty() {
            "Record<string, never>".to_owned()
        } else {
            let fields: Vec<String> = args.iter().map(|(a, t)| format!("{a}: {t}")).collect();
            format!("{{ {} }}", fields.join("; "))
        };
        out.push_str(&format!(
            "  {name}: {{ args: {args}; result: {result} }};\n"
        ));
    }
    out.push_str("}\n\n");
    out.push_str(
        "/** Commands whose body is raw bytes: their headers (values URI-encoded; JSON for \
         objects) and what they resolve to. */\nexport interface RawCommands {\n",
    );
    for (name, headers, result) in raw_commands() {
        let fields: Vec<String> = headers
            .iter()
            .map(|(h, t)| format!("\"{h}\": {t}"))
            .collect();
        out.push_str(&format!(
            "  {name}: {{ headers: {{ {} }}; result: {result} }};\n",
            fields.join("; ")
        ));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn bindings_are_current() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
        let fresh = super::typescript();
        if std::env::var_os("NATTER_WRITE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).expect("write ui/src/bindings.ts");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/bindings.ts is stale: run NATTER_WRITE_BINDINGS=1 cargo test -p natter-app bindings"
        );
    }
}
