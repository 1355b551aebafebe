//! `natter-cli shell` and the one-shot friend and presence commands: a line of words becomes
//! one action.

use anyhow::Result;
use natter_core::{Client, Event};
use natter_proto::Target;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::sync::broadcast;

use crate::{message_json, target, text_of, Out};

/// Reads commands from stdin and prints events as they come, until `quit` or end of input.
pub(crate) async fn shell(
    client: &Client,
    out: &Out,
    events: &mut broadcast::Receiver<Event>,
) -> Result<()> {
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
    Ok(())
}

pub(crate) async fn run_command(client: &Client, out: &Out, line: &[String]) -> Result<bool> {
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

pub(crate) async fn print_hits(client: &Client, out: &Out, query: &str, limit: u32) -> Result<()> {
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
