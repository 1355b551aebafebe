//! The history the app opens: a long alice ↔ bobby conversation and a short alice ↔ carol one,
//! written straight into alice's local store (the app's own SQLite file), as if they had been
//! received over months. Texts are a deterministic mix of Chinese, English and mixed sentences
//! of varied length, in both directions, with runs by the same sender.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use natter_core::store::Store;
use natter_proto::{ChatMessage, MessageBody, MsgId, Target};

/// Messages per `Store::import` transaction.
const BATCH: usize = 5_000;
/// The seeded history spans this many days before now.
const SPAN_DAYS: i64 = 180;

const ZH: &[&str] = &[
    "今天天气不错",
    "我们明天再说话吧",
    "你吃饭了吗？",
    "周末一起去爬山怎么样",
    "这个文件我晚点发给你",
    "会议改到下午三点了",
    "北京今天下雨了，记得带伞",
    "刚到公司，路上有点堵",
    "晚上想吃火锅",
    "我在看那本书，挺有意思的",
    "好的，没问题",
    "哈哈哈",
    "辛苦了",
    "收到",
    "等我五分钟",
    "电脑又死机了，真烦",
    "上海的房价太贵了",
    "咖啡机坏了，下楼买一杯",
    "下周见面聊",
    "生日快乐！",
    "我妈让我周末回家吃饭",
    "这家店的饺子特别好吃",
    "你到了告诉我一声",
    "明天早上八点出发",
    "我觉得这个方案还可以再改改",
];

const EN: &[&str] = &[
    "sounds good",
    "on my way",
    "did you see the game last night?",
    "can you send me the slides?",
    "let's grab coffee tomorrow",
    "the build is green again",
    "I'll be ten minutes late, sorry",
    "ok",
    "lol",
    "that deadline is brutal",
    "meeting moved to 3pm",
    "happy birthday!",
    "check this out when you have a minute",
    "thanks!",
    "how was the trip?",
    "the train is delayed again",
    "I found a nice place for dinner near the office",
    "can we move our call to Friday?",
    "just landed",
    "good night",
];

const MIXED: &[&str] = &[
    "明天的 meeting 改到 10 点",
    "这个 bug 我修好了",
    "我刚 push 了代码",
    "周五 deadline 别忘了",
    "你看 email 了吗",
    "ok，我知道了",
    "下班后去 gym 吗？",
    "那个 PR 帮我 review 一下",
    "今天 WiFi 好慢",
    "周末有空的话 call 我",
    "新的 iPhone 好贵",
    "我在 Starbucks 等你",
];

/// A small deterministic generator (SplitMix64): the same history on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// One sentence-ish fragment: Chinese, English or mixed.
fn fragment(rng: &mut Rng) -> &'static str {
    match rng.below(100) {
        0..=39 => rng.pick(ZH),
        40..=74 => rng.pick(EN),
        _ => rng.pick(MIXED),
    }
}

/// A message text: mostly one or two fragments, sometimes a long paragraph.
fn text(rng: &mut Rng) -> String {
    let parts = match rng.below(100) {
        0..=59 => 1,
        60..=89 => 2,
        90..=96 => 3,
        _ => 5 + rng.below(6),
    };
    let mut out = String::new();
    for i in 0..parts {
        let f = fragment(rng);
        if i > 0 {
            let cjk_end = out.chars().last().is_some_and(|c| !c.is_ascii());
            out.push_str(if cjk_end { "，" } else { ", " });
        }
        out.push_str(f);
    }
    out
}

/// The seeded history of one conversation.
pub struct Conversation {
    /// The other participant.
    pub peer: String,
    /// Every seeded server id, ascending.
    pub ids: Vec<MsgId>,
    /// The newest message's text (what the app must show when the chat opens).
    pub newest_text: String,
}

impl Conversation {
    /// The newest seeded id.
    pub fn newest_id(&self) -> MsgId {
        *self.ids.last().expect("a seeded conversation has messages")
    }
}

/// What was written and how long it took.
pub struct Seeded {
    pub long: Conversation,
    pub short: Conversation,
    pub took: Duration,
    pub db_bytes: u64,
}

/// Timestamps for `n` messages spread over the span, ascending, with some jitter.
fn timestamps(rng: &mut Rng, n: usize, start: i64, end: i64) -> Vec<i64> {
    let step = ((end - start) / n.max(1) as i64).max(1);
    (0..n as i64)
        .map(|i| start + i * step + rng.below(step as u64) as i64)
        .collect()
}

fn newest_marker(peer: &str) -> String {
    format!("最新一条 / newest message for {peer}: 明天上午十点见, see you at 10")
}

/// Writes `long_n` messages with `long_peer` and `short_n` with `short_peer` into `me`'s store at
/// `path`, in server-id order (ids interleaved by time, as a server assigns them).
pub async fn seed_store(
    path: &Path,
    me: &str,
    (long_peer, long_n): (&str, usize),
    (short_peer, short_n): (&str, usize),
) -> Result<Seeded> {
    let started = Instant::now();
    let mut rng = Rng(0x6E61_7474_6572);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_millis() as i64;
    let end = now - 10 * 60_000;
    let start = end - SPAN_DAYS * 86_400_000;
    // (ts, conversation) for every message, merged by time; ids follow that order.
    let mut timeline: Vec<(i64, bool)> = timestamps(&mut rng, long_n, start, end)
        .into_iter()
        .map(|ts| (ts, true))
        .chain(
            timestamps(&mut rng, short_n, start, end)
                .into_iter()
                .map(|ts| (ts, false)),
        )
        .collect();
    timeline.sort_by_key(|&(ts, _)| ts);

    let store = Store::open(path, me)
        .await
        .with_context(|| format!("while opening {}", path.display()))?;
    let mut long = Conversation {
        peer: long_peer.to_owned(),
        ids: Vec::with_capacity(long_n),
        newest_text: newest_marker(long_peer),
    };
    let mut short = Conversation {
        peer: short_peer.to_owned(),
        ids: Vec::with_capacity(short_n),
        newest_text: newest_marker(short_peer),
    };
    let (mut long_left, mut short_left) = (long_n, short_n);
    let mut mine = false;
    let mut batch = Vec::with_capacity(BATCH);
    for (i, &(ts, is_long)) in timeline.iter().enumerate() {
        let msg_id = i as MsgId + 1;
        let (conv, left) = if is_long {
            (&mut long, &mut long_left)
        } else {
            (&mut short, &mut short_left)
        };
        *left -= 1;
        // Runs: the sender changes on about two messages in five.
        if rng.below(5) < 2 {
            mine = !mine;
        }
        let body = if *left == 0 {
            conv.newest_text.clone()
        } else {
            text(&mut rng)
        };
        let (from, to) = if mine {
            (me, conv.peer.as_str())
        } else {
            (conv.peer.as_str(), me)
        };
        conv.ids.push(msg_id);
        batch.push(ChatMessage {
            msg_id,
            client_msg_id: uuid::Uuid::new_v4().to_string(),
            from: from.to_owned(),
            from_guest: false,
            to: Target::User {
                username: to.to_owned(),
            },
            ts,
            body: MessageBody::Text { text: body },
        });
        if batch.len() == BATCH {
            store.import(&batch).await.context("while seeding")?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.import(&batch).await.context("while seeding")?;
    }
    store.close().await;
    let db_bytes = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum();
    Ok(Seeded {
        long,
        short,
        took: started.elapsed(),
        db_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_mix_languages_and_lengths() {
        let mut rng = Rng(1);
        let texts: Vec<String> = (0..2000).map(|_| text(&mut rng)).collect();
        assert!(texts
            .iter()
            .any(|t| t.chars().all(|c| !c.is_ascii_alphabetic())));
        assert!(texts.iter().any(|t| t.is_ascii()));
        assert!(texts.iter().any(|t| t.chars().count() > 80));
    }
}
