//! `natter-cli`: Natter in a terminal, on natter-core. One-shot commands for scripts
//! (`send`, `online`, `add` …, with `--json` output) and `shell` for a person: type commands,
//! watch events arrive.

mod chat;
mod files;
mod out;
mod shell;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use natter_core::{Client, ClientConfig, ClientError, Registration, ServerAddr};
use natter_proto::{PresenceScope, Target};
use serde_json::json;

use out::{message_json, on_events, text_of, Out};

#[derive(Parser)]
#[command(name = "natter-cli", version, about = "Natter from the terminal")]
struct Cli {
    /// Server host; the nodes of a cluster as a list ("a.example,b.example:4100"), tried in
    /// turn when a connection is lost.
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

/// A conversation named on the command line: `square`, or a username.
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
    let default_port = cli.port.unwrap_or(if cli.tls {
        natter_proto::DEFAULT_TLS_PORT
    } else {
        natter_proto::DEFAULT_PORT
    });
    let mut nodes = ServerAddr::parse_list(&cli.host, default_port, cli.tls)
        .map_err(|e| anyhow::anyhow!("--host: {e}"))?
        .into_iter();
    let server = nodes.next().context("--host names no server")?;
    let mut config = ClientConfig::new(server, data_dir);
    config.fallbacks = nodes.collect();
    config.presence = PresenceScope::All;
    let client = Client::start(config);
    if let Some(fp) = &cli.accept_cert {
        client.accept_certificate(fp)?;
    }
    let result = run(&cli, &client, &out).await;
    chat::drain_outbox(&client).await;
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
            shell::print_hits(client, out, query, *limit).await?;
        }
        Command::Send { to, text } => {
            login(cli, client, out, true).await?;
            chat::send_and_wait(client, out, target(to), text).await?;
        }
        Command::Say { text } => {
            login(cli, client, out, true).await?;
            chat::send_and_wait(client, out, Target::Square, text).await?;
        }
        Command::SendFile { to, path } => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            files::send_file(client, out, &mut events, to, path).await?;
        }
        Command::SendImage { to, path } => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            files::send_image(client, out, &mut events, target(to), path).await?;
        }
        Command::Receive { dir, for_secs } => {
            let mut events = client.events();
            login(cli, client, out, false).await?;
            files::receive(client, out, &mut events, dir, *for_secs).await?;
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
            shell::shell(client, out, &mut events).await?;
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
            shell::run_command(client, out, &words).await?;
        }
    }
    Ok(())
}
