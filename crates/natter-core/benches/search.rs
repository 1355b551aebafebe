//! Local search benchmark: fills a real client store with N mixed Chinese/English messages and
//! measures query latency per kind of query (1-, 2-, 4-character Chinese; English words and
//! 2-letter prefixes). Writes its section of docs/BENCHMARKS.md.
//!
//! `cargo bench -p natter-core --bench search` (N = 1,000,000; `NATTER_SEARCHBENCH_N` to change,
//! `NATTER_SEARCHBENCH_OUT` for another file, `-` for stdout only). It reports; it asserts nothing.

use std::time::{Duration, Instant};

use natter_core::store::Store;
use natter_proto::{ChatMessage, MessageBody, Target};

const ZH_WORDS: &[&str] = &[
    "今天", "天气", "很好", "我们", "说话", "电脑", "朋友", "工作", "吃饭", "晚上", "明天", "见面",
    "学习", "中文", "手机", "音乐", "电影", "周末", "咖啡", "时间", "问题", "知道", "喜欢", "开会",
    "下班", "地铁", "北京", "上海", "图片", "文件",
];
const ZH_FILLER: &[&str] = &[
    "的", "了", "吗", "在", "是", "不", "也", "和", "我", "你", "他",
];
const EN_WORDS: &[&str] = &[
    "hello", "world", "coffee", "meeting", "tomorrow", "weekend", "project", "photo", "music",
    "dinner", "thanks", "great", "later", "office", "train", "Café", "résumé", "deadline", "call",
    "message",
];

/// A tiny deterministic generator: the corpus is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn sentence(rng: &mut Rng) -> String {
    let mut s = String::new();
    match rng.next() % 3 {
        0 => {
            for _ in 0..(3 + rng.next() % 6) {
                s.push_str(rng.pick(ZH_WORDS));
                if rng.next().is_multiple_of(2) {
                    s.push_str(rng.pick(ZH_FILLER));
                }
            }
        }
        1 => {
            let words: Vec<&str> = (0..(3 + rng.next() % 8))
                .map(|_| rng.pick(EN_WORDS))
                .collect();
            s = words.join(" ");
        }
        _ => {
            s.push_str(rng.pick(ZH_WORDS));
            s.push_str(rng.pick(ZH_FILLER));
            s.push(' ');
            s.push_str(rng.pick(EN_WORDS));
            s.push(' ');
            s.push_str(rng.pick(ZH_WORDS));
            s.push_str(rng.pick(ZH_WORDS));
        }
    }
    s
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("NATTER_SEARCHBENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("bench.db"), "alice")
        .await
        .expect("store opens");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let to = if i.is_multiple_of(5) {
            Target::Square
        } else {
            Target::User {
                username: "alice".into(),
            }
        };
        batch.push(ChatMessage {
            msg_id: i as i64 + 1,
            client_msg_id: format!("c{i}"),
            from: format!("user{}", i % 97),
            from_guest: false,
            to,
            ts: 1_700_000_000_000 + i as i64,
            body: MessageBody::Text {
                text: sentence(&mut rng),
            },
        });
        if batch.len() == batch.capacity() {
            store.import(&batch).await.expect("import");
            batch.clear();
        }
    }
    store.import(&batch).await.expect("import");
    let fill = started.elapsed();
    let size = std::fs::metadata(dir.path().join("bench.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!("filled {n} messages in {fill:?}");

    let kinds: &[(&str, &[&str])] = &[
        ("Chinese, 1 character", &["说", "天", "电", "咖", "会"]),
        (
            "Chinese, 2 characters",
            &["说话", "电脑", "天气", "咖啡", "开会"],
        ),
        (
            "Chinese, 4 characters",
            &["今天天气", "我们说话", "电脑文件", "周末见面", "北京上海"],
        ),
        (
            "English word",
            &["hello", "coffee", "MEETING", "cafe", "deadline"],
        ),
        ("English, 2-letter prefix", &["he", "co", "me", "ca", "de"]),
        (
            "mixed 中文 + English",
            &["咖啡 coffee", "说话 hello", "电脑 photo"],
        ),
    ];
    let mut rows = Vec::new();
    for (kind, queries) in kinds {
        let mut times = Vec::new();
        let mut found = 0;
        for round in 0..40 {
            for q in *queries {
                let t = Instant::now();
                let hits = store.search(q, 50).await.expect("search");
                let elapsed = t.elapsed();
                if round > 0 {
                    // Round 0 warms the page cache; it is not counted.
                    times.push(elapsed);
                }
                found = found.max(hits.len());
            }
        }
        times.sort();
        rows.push(format!(
            "| {kind} | {} | {} | {} | {} |",
            queries.join(", "),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            found
        ));
    }
    let section = format!(
        "<!-- searchbench:begin -->\n## Local search (`cargo bench -p natter-core --bench search`)\n\n\
         {n} stored messages (a deterministic mix of Chinese, English and mixed sentences) in a real \
         client store ({:.0} MiB with both indexes; filled in {:.0} s in batches of 10,000). Each query asks \
         for the newest 50 hits across all conversations (`Store::search`: FTS5 lookup, then the \
         messages by id), 39 timed rounds after one warm-up round, on this machine (2 cores).\n\n\
         | query kind | queries | p50 ms | p95 ms | hits (max 50) |\n|---|---|---:|---:|---:|\n{}\n\n\
         Terms of 3+ characters use the trigram index; 1–2 character terms the CJK-spaced unicode61 \
         index as phrases (English: prefixes). Target from issue 6: p95 under 10 ms for each kind.\n\
         <!-- searchbench:end -->",
        size as f64 / 1_048_576.0,
        fill.as_secs_f64(),
        rows.join("\n")
    );
    println!("{section}");
    let out = std::env::var("NATTER_SEARCHBENCH_OUT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/BENCHMARKS.md").to_owned()
    });
    if out == "-" {
        return;
    }
    let doc = std::fs::read_to_string(&out).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let doc = match (
        doc.find("<!-- searchbench:begin -->"),
        doc.find("<!-- searchbench:end -->"),
    ) {
        (Some(a), Some(b)) if a < b => {
            format!(
                "{}{}{}",
                &doc[..a],
                section,
                &doc[b + "<!-- searchbench:end -->".len()..]
            )
        }
        _ => format!("{}\n\n{}\n", doc.trim_end(), section),
    };
    std::fs::write(&out, doc).expect("write BENCHMARKS.md");
}
