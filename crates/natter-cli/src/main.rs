//! `natter-cli`: Natter in a terminal, on natter-core. One-shot commands for scripts
//! (`send`, `online`, `add` …, with `--json` output) and `shell` for a person: type commands,
//! watch events arrive.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use natter_core::{
    Client, ClientConfig, ClientError, ConnectionState, Event, LocalMessage, Registration,
    ServerAddr, TransferState,
};
use natter_proto::{PresenceScope, Target};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(name = "natter-cli", version, about = "Natter from the terminal")]
struct Cli {
    /// Server host.
    #[arg(long, env = "NATTER_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Server port [default: 4399 with --tls, else 4004].
    #[arg(long, env = "NATTER_PORT")]
    port: Option<u16>,
    /// Use TLS (the certificate is pinned on first use).
    #[arg(long, env = "NATTER_TLS")]
    tls: bool,
    /// Trust this certificate fingerprint (hex SHA-256) for the server, replacing the pin.
    #[arg(long)]
    accept_cert: Option<String>,
    /// Where local history and pins live [default: the user's data dir/natter-cli].
    #[arg(long, env = "NATTER_CLI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log in as this registered user.
    #[arg(long, env = "NATTER_USER", conflicts_with = "guest")]
    user: Option<String>,
    /// Password for --user.
    #[arg(long, env = "NATTER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Log in as a guest with this name.
    #[arg(long)]
    guest: Option<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account (password from --password or NATTER_PASSWORD).
    Register {
        /// Username: letters and digits, 4–32.
        username: String,
        /// Nickname.
        #[arg(long, default_value = "")]
        nickname: String,
        /// Motto.
        #[arg(long, default_value = "")]
        motto: String,
        /// Phone.
        #[arg(long, default_value = "")]
        phone: String,
    },
    /// Is a username free?
    Query {
        /// Username.
        username: String,
    },
    /// Who is online.
    Online,
    /// Friends and pending requests.
    Friends,
    /// Ask someone to be friends.
    Add {
        /// Username.
        username: String,
        /// A note.
        #[arg(default_value = "")]
        message: String,
    },
    /// Accept a friend request.
    Accept {
        /// Requester.
        username: String,
    },
    /// Reject a friend request.
    Reject {
        /// Requester.
        username: String,
    },
    /// End a friendship.
    Unfriend {
        /// Friend.
        username: String,
    },
    /// Send a private message (queued and sent later if the server is unreachable).
    Send {
        /// Recipient.
        to: String,
        /// Text.
        text: String,
    },
    /// Say something in the square.
    Say {
        /// Text.
        text: String,
    },
    /// Show a conversation (`square` for the square).
    History {
        /// Username or `square`.
        with: String,
        /// How many messages.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Search local history (works offline; Chinese and English, any length).
    Search {
        /// Words to find; every one must match.
        query: String,
        /// Most results.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Offer a file to a user and wait until the server has all of it (resumes by itself if the
    /// connection drops; run again after a crash and it continues where it stopped).
    SendFile {
        /// Recipient.
        to: String,
        /// The file.
        path: PathBuf,
    },
    /// Send an image (PNG, JPEG, GIF, WebP) to a user or `square`.
    SendImage {
        /// Username or `square`.
        to: String,
        /// The image.
        path: PathBuf,
    },
    /// Accept every file offered (now or while away) into a directory, and finish interrupted
    /// downloads; prints progress.
    Receive {
        /// Where files are saved.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        for_secs: Option<u64>,
    },
    /// Print events as they arrive.
    Follow {
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        for_secs: Option<u64>,
    },
    /// Interactive: type `help` for commands; events print as they arrive.
    Shell,
}

struct Out {
    json: bool,
}

impl Out {
    fn print(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }

    fn event(&self, event: &Event) {
        match event {
            Event::Connection(state) => self.print(json!({"event": "connection", "state": state}), || {
                format!("-- {}", match state {
                    ConnectionState::Online => "online",
                    ConnectionState::Connecting => "connecting…",
                    ConnectionState::Offline => "offline",
                })
            }),
            Event::Message(m) => self.print(message_json("message", m), || {
                let place = match &m.to {
                    Target::Square => "[square] ".to_owned(),
                    Target::User { .. } => String::new(),
                };
                format!("{place}{}{}: {}", m.from, if m.from_guest { " (guest)" } else { "" }, text_of(m))
            }),
            Event::Sent { client_msg_id, msg_id, .. } => {
                self.print(json!({"event": "sent", "client_msg_id": client_msg_id, "msg_id": msg_id}), || {
                    format!("-- sent #{msg_id}")
                })
            }
            Event::Delivered { client_msg_id, msg_id, to } => self.print(
                json!({"event": "delivered", "client_msg_id": client_msg_id, "msg_id": msg_id, "to": to}),
                || format!("-- delivered #{msg_id} to {to}"),
            ),
            Event::Failed { client_msg_id, code, message } => self.print(
                json!({"event": "failed", "client_msg_id": client_msg_id, "code": code, "message": message}),
                || format!("-- not sent: {message}"),
            ),
            Event::UserOnline(u) => self.print(json!({"event": "user_online", "username": u.username, "is_guest": u.is_guest}), || {
                format!("-- {} is online", u.username)
            }),
            Event::UserOffline { username } => {
                self.print(json!({"event": "user_offline", "username": username}), || format!("-- {username} went offline"))
            }
            Event::FriendRequest(r) => self.print(json!({"event": "friend_request", "from": r.from, "message": r.message}), || {
                format!("-- {} asks to be friends: {}  (accept {0} / reject {0})", r.from, r.message)
            }),
            Event::FriendResponse { username, accepted, .. } => self.print(
                json!({"event": "friend_response", "username": username, "accepted": accepted}),
                || format!("-- {username} {} your friend request", if *accepted { "accepted" } else { "declined" }),
            ),
            Event::FriendRemoved { username } => {
                self.print(json!({"event": "friend_removed", "username": username}), || format!("-- {username} removed you"))
            }
            Event::Kicked { reason } => self.print(json!({"event": "kicked", "reason": reason}), || format!("-- disconnected by the server: {reason}")),
            Event::SessionLost(e) => self.print(json!({"event": "session_lost", "error": e.to_string()}), || format!("-- session lost: {e}")),
            Event::CertificateChanged(e) => self.print(json!({"event": "certificate_changed", "error": e.to_string()}), || format!("-- {e}")),
            Event::Transfer(t) => self.print(
                json!({"event": "transfer", "file_id": t.file_id, "direction": t.direction, "kind": t.kind,
                       "peer": t.peer, "name": t.name, "size": t.size, "done": t.done, "rate": t.rate,
                       "state": t.state, "path": t.path, "error": t.error}),
                || {
                    let pct = (t.done * 100).checked_div(t.size).unwrap_or(100);
                    format!("-- file {} ({:?}, {}): {:?} {pct}%", t.name, t.direction, t.peer, t.state)
                },
            ),
            Event::Call(c) => self.print(
                json!({"event": "call", "call_id": c.call_id, "peer": c.peer, "outgoing": c.outgoing,
                       "phase": c.phase, "reason": c.reason, "muted": c.muted}),
                || match c.reason {
                    Some(reason) => format!("-- call with {} ended ({reason:?})", c.peer),
                    None => format!("-- call with {}: {:?}", c.peer, c.phase),
                },
            ),
            Event::LoggedIn(_) | Event::Other(_) => {}
        }
    }
}

fn text_of(m: &LocalMessage) -> String {
    match &m.body {
        natter_proto::MessageBody::Text { text } => text.clone(),
        natter_proto::MessageBody::Image { name, .. } => format!("[image {name}]"),
        natter_proto::MessageBody::File { name, .. } => format!("[file {name}]"),
    }
}

fn message_json(kind: &str, m: &LocalMessage) -> serde_json::Value {
    json!({
        "event": kind,
        "msg_id": m.msg_id,
        "client_msg_id": m.client_msg_id,
        "from": m.from,
        "from_guest": m.from_guest,
        "to": m.to,
        "ts": m.ts,
        "text": text_of(m),
        "state": m.state,
    })
}

fn target(with: &str) -> Target {
    if with.eq_ignore_ascii_case("square") {
        Target::Square
    } else {
        Target::User {
            username: with.to_owned(),
        }
    }
}

/// Logs in. With `offline_ok`, a registered user whose server is unreachable carries on with
/// the local store alone (what they send waits in the outbox for the next run).
async fn login(cli: &Cli, client: &Client, out: &Out, offline_ok: bool) -> Result<()> {
    let info = match (&cli.user, &cli.guest) {
        (Some(user), _) => {
            // Open the local store first so a message queued while the server is down can wait.
            client.open_local(user).await?;
            match client.resume_saved(user, cli.password.as_deref()).await {
                Err(ClientError::Io(_) | ClientError::Offline | ClientError::Timeout)
                    if offline_ok =>
                {
                    out.print(json!({"event": "offline", "username": user}), || {
                        "-- the server is unreachable; working offline".to_owned()
                    });
                    return Ok(());
                }
                other => other,
            }
        }
        (None, Some(guest)) => client.guest_login(guest).await,
        (None, None) => bail!("this command needs --user NAME (with --password) or --guest NAME"),
    };
    match info {
        Ok(info) => {
            out.print(
                json!({"event": "logged_in", "username": info.profile.username, "is_guest": info.profile.is_guest,
                       "online": info.online.iter().map(|u| &u.username).collect::<Vec<_>>(),
                       "friends": info.friends.iter().map(|f| json!({"username": f.username, "online": f.online})).collect::<Vec<_>>(),
                       "incoming_requests": info.incoming_requests.iter().map(|r| json!({"from": r.from, "message": r.message})).collect::<Vec<_>>()}),
                || format!("-- logged in as {}{}", info.profile.username, if info.profile.is_guest { " (guest)" } else { "" }),
            );
            Ok(())
        }
        Err(e) => Err(e).context("login failed"),
    }
}

async fn send_and_wait(client: &Client, out: &Out, to: Target, text: &str) -> Result<()> {
    let mut events = client.events();
    let queued = client.send_text(to, text).await?;
    let wait = if client.connection_state() == ConnectionState::Online {
        10
    } else {
        0
    };
    let deadline = tokio::time::sleep(Duration::from_secs(wait));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                out.print(json!({"event": "queued", "client_msg_id": queued.client_msg_id}), || {
                    "-- queued: it will be sent when the server is reachable".to_owned()
                });
                return Ok(());
            }
            event = events.recv() => match event {
                Ok(e @ Event::Sent { .. }) | Ok(e @ Event::Failed { .. }) => {
                    let (Event::Sent { client_msg_id, .. } | Event::Failed { client_msg_id, .. }) = &e else { unreachable!() };
                    if *client_msg_id == queued.client_msg_id {
                        out.event(&e);
                        if matches!(e, Event::Failed { .. }) {
                            bail!("the server refused the message");
                        }
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(_) => bail!("the client stopped"),
            }
        }
    }
}

async fn run_command(client: &Client, out: &Out, line: &[String]) -> Result<bool> {
    let words: Vec<&str> = line.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => {}
        ["quit" | "exit"] => return Ok(false),
        ["help"] => println!(
            "send USER TEXT | say TEXT | history USER|square | search WORDS | online | friends | add USER [NOTE] | accept USER | reject USER | unfriend USER | quit"
        ),
        ["send", to, text @ ..] if !text.is_empty() => {
            client.send_text(target(to), &text.join(" ")).await?;
        }
        ["say", text @ ..] if !text.is_empty() => {
            client.send_text(Target::Square, &text.join(" ")).await?;
        }
        ["history", with] => {
            for m in client.history(&target(with), None, 50).await? {
                out.print(message_json("history", &m), || format!("{} {}: {}  [{:?}]", m.ts, m.from, text_of(&m), m.state));
            }
        }
        ["search", words @ ..] if !words.is_empty() => {
            print_hits(client, out, &words.join(" "), 20).await?;
        }
        ["online"] => {
            let users = client.list_online().await?;
            out.print(json!({"online": users}), || {
                users.iter().map(|u| format!("{}{}", u.username, if u.is_guest { " (guest)" } else { "" })).collect::<Vec<_>>().join("\n")
            });
        }
        ["friends"] => {
            let list = client.friend_list().await?;
            out.print(json!({"friends": list.friends, "incoming": list.incoming, "outgoing": list.outgoing}), || {
                let mut lines: Vec<String> = list
                    .friends
                    .iter()
                    .map(|f| format!("{} {}", if f.online { "●" } else { "○" }, f.username))
                    .collect();
                lines.extend(list.incoming.iter().map(|r| format!("? {} asks: {}", r.from, r.message)));
                lines.extend(list.outgoing.iter().map(|r| format!("… waiting for {}", r.to)));
                lines.join("\n")
            });
        }
        ["add", user, note @ ..] => {
            client.friend_request(user, &note.join(" ")).await?;
            out.print(json!({"ok": "friend_request"}), || format!("-- asked {user}"));
        }
        ["accept", user] => {
            client.friend_respond(user, true).await?;
            out.print(json!({"ok": "accepted"}), || format!("-- you and {user} are friends"));
        }
        ["reject", user] => {
            client.friend_respond(user, false).await?;
            out.print(json!({"ok": "rejected"}), || format!("-- declined {user}"));
        }
        ["unfriend", user] => {
            client.friend_delete(user).await?;
            out.print(json!({"ok": "unfriended"}), || format!("-- removed {user}"));
        }
        other => println!("unknown command {other:?}; type help"),
    }
    Ok(true)
}

async fn print_hits(client: &Client, out: &Out, query: &str, limit: u32) -> Result<()> {
    for hit in client.search(query, limit).await? {
        let place = match &hit.with {
            Target::Square => "square".to_owned(),
            Target::User { username } => username.clone(),
        };
        let mut value = message_json("search_hit", &hit.message);
        value["with"] = json!(place);
        out.print(value, || {
            format!("[{place}] {}: {}", hit.message.from, text_of(&hit.message))
        });
    }
    Ok(())
}

fn split_line(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let out = Out { json: cli.json };
    let data_dir = match &cli.data_dir {
        Some(d) => d.clone(),
        None => dirs::data_dir()
            .context("no data directory; pass --data-dir")?
            .join("natter-cli"),
    };
    let server = ServerAddr {
        host: cli.host.clone(),
        port: cli.port.unwrap_or(if cli.tls {
            natter_proto::DEFAULT_TLS_PORT
        } else {
            natter_proto::DEFAULT_PORT
        }),
        tls: cli.tls,
    };
    let mut config = ClientConfig::new(server, data_dir);
    config.presence = PresenceScope::All;
    let client = Client::start(config);
    if let Some(fp) = &cli.accept_cert {
        client.accept_certificate(fp)?;
    }
    let result = run(&cli, &client, &out).await;
    drain_outbox(&client).await;
    client.shutdown().await;
    if let Err(e) = &result {
        if let Some(natter_core::ClientError::CertificateChanged { actual, .. }) = e.downcast_ref()
        {
            eprintln!("to trust the new certificate, run again with --accept-cert {actual}");
        }
        out.print(json!({"error": format!("{e:#}")}), || {
            format!("error: {e:#}")
        });
        std::process::exit(1);
    }
    Ok(())
}

/// Gives messages that a login just flushed from the outbox a moment to be stored by the server
/// before the process exits (they would go with the next run otherwise, never twice).
/// `dir/name`, or `dir/name (2)` … when that exists (names were sanitised by natter-core).
fn free_path(dir: &std::path::Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Hands every event to `handle` until `for_secs` pass (or Ctrl-C, without a limit) or the
/// client stops.
async fn on_events(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    for_secs: Option<u64>,
    mut handle: impl AsyncFnMut(Event) -> Result<()>,
) -> Result<()> {
    let stop = async {
        match for_secs {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            event = events.recv() => match event {
                Ok(event) => handle(event).await?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return Ok(()),
            }
        }
    }
}

/// Prints a transfer's progress until `done` says its state is the end (or it fails).
async fn wait_transfer(
    out: &Out,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    file_id: &str,
    done: impl Fn(TransferState) -> bool,
) -> Result<()> {
    loop {
        match events.recv().await {
            Ok(Event::Transfer(t)) if t.file_id == file_id => {
                out.event(&Event::Transfer(t.clone()));
                if done(t.state) {
                    return Ok(());
                }
                if t.state.is_final() {
                    bail!(
                        "the transfer ended {:?}: {}",
                        t.state,
                        t.error.unwrap_or_default()
                    );
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => bail!("the client stopped"),
        }
    }
}

async fn drain_outbox(client: &Client) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.connection_state() == ConnectionState::Online
        && tokio::time::Instant::now() < deadline
    {
        match client.outbox_len().await {
            Ok(0) | Err(_) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn run(cli: &Cli, client: &Client, out: &Out) -> Result<()> {
    match &cli.command {
        Command::Register {
            username,
            nickname,
            motto,
            phone,
        } => {
            let password = cli
                .password
                .clone()
                .context("register needs --password or NATTER_PASSWORD")?;
            let profile = client
                .register(Registration {
                    username: username.clone(),
                    password,
                    nickname: nickname.clone(),
                    motto: motto.clone(),
                    phone: phone.clone(),
                })
                .await?;
            out.print(json!({"registered": profile.username}), || {
                format!("-- registered {}", profile.username)
            });
        }
        Command::Query { username } => {
            let status = client.query_username(username).await?;
            out.print(
                json!({"username": username, "available": status.is_ok(), "reason": status.err()}),
                || match status {
                    Ok(()) => format!("{username} is available"),
                    Err(code) => format!("{username} is not available ({code})"),
                },
            );
        }
        Command::Search { query, limit } => {
            let user = cli.user.as_deref().or(cli.guest.as_deref()).context(
                "search needs --user NAME (or --guest NAME): it reads that account's history",
            )?;
            client.open_local(user).await?;
            print_hits(client, out, query, *limit).await?;
        }
        Command::Send { to, text } => {
            login(cli, client, out, true).await?;
            send_and_wait(client, out, target(to), text).await?;
        }
        Command::Say { text } => {
            login(cli, client, out, true).await?;
            send_and_wait(client, out, Target::Square, text).await?;
        }
        Command::SendFile { to, path } => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            let sent = client.send_file(to, path).await?;
            out.event(&Event::Transfer(sent.clone()));
            wait_transfer(out, &mut events, &sent.file_id, |s| {
                matches!(s, TransferState::Uploaded | TransferState::Done)
            })
            .await?;
            drain_outbox(client).await;
        }
        Command::SendImage { to, path } => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            let sent = client.send_image(target(to), path).await?;
            wait_transfer(out, &mut events, &sent.file_id, |s| {
                s == TransferState::Done
            })
            .await?;
            drain_outbox(client).await;
        }
        Command::Receive { dir, for_secs } => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            std::fs::create_dir_all(dir)?;
            let accept = |t: &natter_core::TransferInfo| {
                t.direction == natter_core::Direction::Down
                    && t.kind == natter_proto::FileKind::File
                    && t.state == TransferState::Offered
            };
            for t in client.transfers().await? {
                if accept(&t) {
                    client
                        .accept_file(&t.file_id, &free_path(dir, &t.name))
                        .await?;
                }
            }
            on_events(&mut events, *for_secs, async |event| {
                if let Event::Transfer(t) = event {
                    out.event(&Event::Transfer(t.clone()));
                    if accept(&t) {
                        client
                            .accept_file(&t.file_id, &free_path(dir, &t.name))
                            .await?;
                    }
                }
                Ok(())
            })
            .await?;
        }
        Command::Follow { for_secs } => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            on_events(&mut events, *for_secs, async |event| {
                out.event(&event);
                Ok(())
            })
            .await?;
        }
        Command::Shell => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            loop {
                tokio::select! {
                    line = lines.next_line() => match line? {
                        None => break,
                        Some(line) => match run_command(client, out, &split_line(&line)).await {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => out.print(json!({"error": format!("{e:#}")}), || format!("error: {e:#}")),
                        },
                    },
                    event = events.recv() => match event {
                        Ok(e) => out.event(&e),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
            }
        }
        simple => {
            login(cli, client, out, false).await?;
            let words: Vec<String> = match simple {
                Command::Online => vec!["online".into()],
                Command::Friends => vec!["friends".into()],
                Command::Add { username, message } => {
                    vec!["add".into(), username.clone(), message.clone()]
                }
                Command::Accept { username } => vec!["accept".into(), username.clone()],
                Command::Reject { username } => vec!["reject".into(), username.clone()],
                Command::Unfriend { username } => vec!["unfriend".into(), username.clone()],
                Command::History { with, limit } => {
                    for m in client.history(&target(with), None, *limit).await? {
                        out.print(message_json("history", &m), || {
                            format!("{}: {}  [{:?}]", m.from, text_of(&m), m.state)
                        });
                    }
                    return Ok(());
                }
                _ => unreachable!("handled above"),
            };
            run_command(client, out, &words).await?;
        }
    }
    Ok(())
}
