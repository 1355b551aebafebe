//! The markdown report, printed to stdout and written between the appbench markers of
//! docs/BENCHMARKS.md (by `natter_e2e::bench_report::write_section`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::page::Opened;
use super::procs::Snapshot;
use super::{Config, Launch, Results, SHORT_CHAT};

/// The section of docs/BENCHMARKS.md this bench owns.
pub const SECTION: &str = "appbench";

/// The figure issue 6 cites for a bare Tauri window under Xvfb on this kind of machine.
const CITED_BARE_TAURI_MIB: f64 = 270.0;

/// Summary of a sample.
struct Stats {
    n: usize,
    median: f64,
    p90: f64,
    min: f64,
    max: f64,
}

fn stats(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    // Nearest rank.
    let p90 = v[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some(Stats {
        n,
        median,
        p90,
        min: v[0],
        max: v[n - 1],
    })
}

/// WebKit's `performance.now()` ticks in whole milliseconds, so no decimals above 10 ms.
fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

fn ms_of(s: &Option<Stats>, f: impl Fn(&Stats) -> f64) -> String {
    s.as_ref().map_or("–".into(), |s| ms(f(s)))
}

fn ratio(a: &Option<Stats>, b: &Option<Stats>, f: impl Fn(&Stats) -> f64) -> String {
    match (a, b) {
        (Some(a), Some(b)) if f(b) > 0.0 => format!("{:.2}×", f(a) / f(b)),
        _ => "–".into(),
    }
}

fn count(n: usize) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    groups.join(",")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Process names that get a column of their own in the memory table.
const MAIN_PROCS: [&str; 3] = ["natter", "WebKitWebProcess", "WebKitNetworkProcess"];

fn mem_row(o: &mut String, label: &str, snapshot: &Snapshot) {
    let tree = &snapshot.procs;
    if tree.is_empty() {
        let _ = writeln!(o, "| {label} | not measured | | | | | |");
        return;
    }
    let mut by_name: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for p in tree {
        let e = by_name.entry(p.name.as_str()).or_default();
        e.0 += p.pss_kib;
        e.1 += 1;
    }
    let total: u64 = tree.iter().map(|p| p.pss_kib).sum();
    let private: u64 = tree.iter().map(|p| p.uss_kib).sum();
    let mut cells = Vec::new();
    for name in MAIN_PROCS {
        cells.push(match by_name.get(name) {
            Some(&(kib, 1)) => mib(kib),
            Some(&(kib, n)) => format!("{} ({n} processes)", mib(kib)),
            None => "–".into(),
        });
    }
    let others: Vec<String> = by_name
        .iter()
        .filter(|(name, _)| !MAIN_PROCS.contains(name))
        .map(|(name, &(kib, n))| {
            if n == 1 {
                format!("{name} {}", mib(kib))
            } else {
                format!("{name} ×{n} {}", mib(kib))
            }
        })
        .collect();
    let _ = writeln!(
        o,
        "| {label} | **{}** | {} | {} | {} | {} | {} |",
        mib(total),
        mib(private),
        cells[0],
        cells[1],
        cells[2],
        if others.is_empty() {
            "–".into()
        } else {
            others.join(", ")
        }
    );
}

fn pss_of(snapshot: &Snapshot, name: &str) -> f64 {
    snapshot
        .procs
        .iter()
        .filter(|p| p.name == name)
        .map(|p| p.pss_kib)
        .sum::<u64>() as f64
        / 1024.0
}

fn total_mib(snapshot: &Snapshot) -> f64 {
    snapshot.procs.iter().map(|p| p.pss_kib).sum::<u64>() as f64 / 1024.0
}

fn dom(v: &[Opened]) -> Option<Stats> {
    stats(v.iter().map(|o| o.dom_ms))
}

fn paint(v: &[Opened]) -> Option<Stats> {
    stats(v.iter().map(|o| o.paint_ms))
}

fn rows(v: &[Opened]) -> String {
    let r = stats(v.iter().map(|o| f64::from(o.rows)));
    r.map_or("–".into(), |r| {
        if r.min == r.max {
            format!("{:.0}", r.min)
        } else {
            format!("{:.0}–{:.0}", r.min, r.max)
        }
    })
}

fn cold_cell(s: &Option<Stats>) -> String {
    match s {
        Some(s) if s.n == 1 => format!("{} (n=1)", ms(s.median)),
        Some(s) => format!("{} ({}–{}, n={})", ms(s.median), ms(s.min), ms(s.max), s.n),
        None => "–".into(),
    }
}

fn launch_row(o: &mut String, label: &str, v: Option<Stats>) {
    match v {
        Some(s) => {
            let _ = writeln!(
                o,
                "| {label} | {} | {} | {} |",
                ms(s.median),
                ms(s.min),
                ms(s.max)
            );
        }
        None => {
            let _ = writeln!(o, "| {label} | – | – | – |");
        }
    }
}

/// Renders the whole section (without the markers).
pub fn render(cfg: &Config, r: &Results) -> String {
    let mut o = String::new();
    let c = &r.chat;
    let m = &r.machine;
    let release = cfg.app_bin.components().any(|p| p.as_os_str() == "release");
    let _ = writeln!(o, "## Desktop app (`natter-appbench`)\n");
    let _ = writeln!(
        o,
        "_Generated {} by `{}` at git `{}`{}; the run took {:.0} s._\n",
        m.date,
        cfg.command_line,
        m.git_rev,
        if cfg.quick {
            " (**--quick smoke run**, not the real figures)"
        } else {
            ""
        },
        r.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "**Machine:** {} × {}, {:.1} GiB RAM, Linux {}, WebKitGTK {}. The app (`{}`, a {} build \
         with the UI embedded) runs in a real window under Xvfb (1280×800×24, software \
         rendering), driven by tauri-driver + WebKitWebDriver; natter-server runs on 127.0.0.1 on \
         the same machine.\n",
        m.cpus,
        m.model,
        m.mem_gib,
        m.kernel,
        r.webkit,
        cfg.app_bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        if release { "release" } else { "debug" },
    );

    let _ = writeln!(
        o,
        "Run it with `npm --prefix ui run build && cargo build --release -p natter-app -p \
         natter-server -p natter-e2e --bin natter-appbench`, then `xvfb-run -a -s \"-screen 0 1280x800x24\" \
         target/release/natter-appbench` (needs tauri-driver; `--quick --no-write` is the smoke \
         run, `--build-time` adds the clean release build, `--help` lists the rest). It measures \
         and reports; it asserts no target.\n"
    );

    // ---- opening a chat
    let (cl, cs) = (dom(&c.cold_long), dom(&c.cold_short));
    let (wl, ws) = (dom(&c.warm_long), dom(&c.warm_short));
    let (pl, ps) = (paint(&c.warm_long), paint(&c.warm_short));
    let _ = writeln!(o, "### Opening a chat\n");
    let _ = writeln!(
        o,
        "alice's local store holds {} messages with bobby and {} with carol ({} on disk with the \
         search indexes, written in {:.0} s): mixed Chinese / English texts of varied length, both \
         directions, over 180 days. Time from the click on the conversation to the bubble of the \
         newest message (with its text) being in the DOM; \"next paint\" adds the wait for the \
         frame after it.\n",
        count(c.seeded_messages),
        SHORT_CHAT,
        mib(c.db_bytes / 1024),
        c.seed_took.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "| chat | stored messages | first open after app start: median (min–max, n) | later opens: median | p90 | min | next paint (median) | message rows in the DOM |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        o,
        "| alice ↔ bobby | {} | {} | **{}** | {} | {} | {} | {} |",
        count(c.seeded_messages),
        cold_cell(&cl),
        ms_of(&wl, |s| s.median),
        ms_of(&wl, |s| s.p90),
        ms_of(&wl, |s| s.min),
        ms_of(&pl, |s| s.median),
        rows(&c.warm_long)
    );
    let _ = writeln!(
        o,
        "| alice ↔ carol (baseline) | {} | {} | **{}** | {} | {} | {} | {} |",
        SHORT_CHAT,
        cold_cell(&cs),
        ms_of(&ws, |s| s.median),
        ms_of(&ws, |s| s.p90),
        ms_of(&ws, |s| s.min),
        ms_of(&ps, |s| s.median),
        rows(&c.warm_short)
    );
    let _ = writeln!(
        o,
        "| ratio bobby / carol | {:.0}× | {} | **{}** | {} | {} | {} | |\n",
        c.seeded_messages as f64 / SHORT_CHAT as f64,
        ratio(&cl, &cs, |s| s.median),
        ratio(&wl, &ws, |s| s.median),
        ratio(&wl, &ws, |s| s.p90),
        ratio(&wl, &ws, |s| s.min),
        ratio(&pl, &ps, |s| s.median),
    );

    // ---- paging
    let per_page = stats(c.pages.iter().map(|p| p.ms));
    let page_size = stats(
        c.pages
            .iter()
            .filter_map(|p| match (p.loaded_before, p.loaded_at) {
                (Some(b), Some(a)) => Some(f64::from(a.saturating_sub(b))),
                _ => None,
            }),
    );
    let jumped = c.pages.iter().filter(|p| p.scroll_top < 1.0).count();
    let _ = writeln!(
        o,
        "### Paging back through alice ↔ bobby
"
    );
    let _ = writeln!(
        o,
        "| pages | per page: median | p90 | max | messages per page | messages loaded: after opening → after the pages | message rows in the DOM then |"
    );
    let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|");
    let loaded = |n: Option<u32>| n.map_or("?".to_owned(), |n| count(n as usize));
    let _ = writeln!(
        o,
        "| {} | **{}** | {} | {} | {} | {} → {} | {} |\n",
        c.pages.len(),
        ms_of(&per_page, |s| s.median),
        ms_of(&per_page, |s| s.p90),
        ms_of(&per_page, |s| s.max),
        page_size.map_or("?".to_owned(), |s| format!("{:.0}", s.median)),
        loaded(c.loaded_after_open),
        loaded(c.loaded_after_pages),
        c.rows_after_pages.map_or("?".to_owned(), |n| n.to_string()),
    );

    // ---- memory
    let _ = writeln!(o, "### Memory (PSS)\n");
    let _ = writeln!(
        o,
        "Summed PSS (`/proc/PID/smaps_rollup`) of the `natter` process and every process below it, \
         after {} s idle; tauri-driver and WebKitWebDriver (test tooling) are not counted. \
         \"Private (USS)\" is the sum of private clean + dirty pages: memory no other process \
         shares.\n",
        cfg.idle.as_secs()
    );
    let _ = writeln!(
        o,
        "| state | app + WebKit: PSS | of it private (USS) | natter PSS | WebKitWebProcess PSS | WebKitNetworkProcess PSS | other |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---|");
    mem_row(&mut o, "login screen (fresh data dir)", &r.login_screen_mem);
    mem_row(&mut o, "logged in, no chat open", &c.idle_mem);
    mem_row(
        &mut o,
        &format!(
            "the {}-message chat open (its first opening)",
            count(c.seeded_messages)
        ),
        &c.first_open_mem,
    );
    mem_row(
        &mut o,
        &format!(
            "the same chat open again, after {} more openings of each chat",
            cfg.reps
        ),
        &c.reopened_mem,
    );
    mem_row(
        &mut o,
        &format!(
            "after paging back {} pages ({} messages loaded)",
            c.pages.len(),
            c.loaded_after_pages
                .map_or("?".to_owned(), |n| count(n as usize))
        ),
        &c.paged_mem,
    );
    let _ = writeln!(
        o,
        "| bare Tauri window under Xvfb: the figure issue 6 cites, **not measured in this run** | ≈ {CITED_BARE_TAURI_MIB:.0} MB | | | | | |\n"
    );

    // ---- launch
    let l = &r.launches;
    let stat = |f: fn(&Launch) -> f64| stats(l.iter().map(f));
    let _ = writeln!(o, "### Launch to the login screen\n");
    let _ = writeln!(
        o,
        "{} launches, each with a fresh data dir (so the first screen is the connect screen). \
         The launch call starts tauri-driver (polled every 100 ms until it listens) and opens a \
         WebDriver session, which starts the app; the app process's start time comes from \
         /proc (10 ms ticks), the screen's from a MutationObserver in the page.\n",
        l.len()
    );
    let _ = writeln!(o, "| ms | median | min | max |");
    let _ = writeln!(o, "|---|---:|---:|---:|");
    launch_row(
        &mut o,
        "**app process started → connect screen in the DOM**",
        stats(
            l.iter()
                .filter_map(|x| x.process_ms.map(|p| x.screen_ms - p)),
        ),
    );
    launch_row(
        &mut o,
        "launch call → app process started",
        stats(l.iter().filter_map(|x| x.process_ms)),
    );
    launch_row(
        &mut o,
        "launch call → WebDriver session open",
        stat(|x| x.session_ms),
    );
    launch_row(
        &mut o,
        "launch call → page navigation started",
        stat(|x| x.navigation_ms),
    );
    if l.iter().any(|x| x.fcp_ms.is_some()) {
        launch_row(
            &mut o,
            "launch call → first contentful paint",
            stats(l.iter().filter_map(|x| x.fcp_ms)),
        );
    }
    launch_row(
        &mut o,
        "launch call → connect screen in the DOM",
        stat(|x| x.screen_ms),
    );
    let _ = writeln!(o);
    if let Some(b) = &r.build {
        let total = b.npm.as_secs_f64() + b.cargo.as_secs_f64() + b.launch.screen_ms / 1000.0;
        let _ = writeln!(
            o,
            "**Release build from a clean tree to a usable login screen:** {:.0} s = `npm --prefix \
             ui run build` {:.0} s + `cargo build --release -p natter-app` in an empty \
             CARGO_TARGET_DIR {:.0} s (every dependency compiled; node_modules already installed) \
             + launching that binary to the connect screen {:.1} s.\n",
            total,
            b.npm.as_secs_f64(),
            b.cargo.as_secs_f64(),
            b.launch.screen_ms / 1000.0
        );
    } else {
        let _ = writeln!(
            o,
            "The release build from a clean tree was not timed in this run (`--build-time`).\n"
        );
    }

    // ---- method and notes
    let _ = writeln!(o, "### Method\n");
    let _ = writeln!(
        o,
        "- natter-server and three accounts (alice, bobby, carol; alice friends with both) are \
         set up with natter-core clients; the messages go straight into alice's store with \
         `Store::import` (ids in time order, as the server assigns them), then the app logs in \
         through its connect and login screens.\n\
         - Each timing is one asynchronous script inside the page: `performance.now()`, a `click()` \
         on the conversation (or `scrollTop = 0` on the message list), a MutationObserver until \
         the newest bubble is there (or older rows were put in front), the elapsed time back. \
         WebDriver round trips are outside the figures.\n\
         - Openings alternate bobby / carol, each followed by a switch to the square; {} \
         later opens per chat after the first. First opens: the first after login plus one after \
         each of {} app restarts (the session resumes with the saved token).\n\
         - Paging: {} times, scroll the list to the top (after stepping away from it if \
         already there) and wait until the chat holds more messages.",
        cfg.reps, c.restarts, cfg.pages
    );
    let _ = writeln!(o, "\n### Notes\n");
    let mut notes = Vec::new();
    notes.push(
        "A later open renders the page the app already holds in memory (the chat's first page \
         stays in the UI's state) while it asks the store and the server again; the first open \
         after a start includes the IPC call and the SQLite query. Both are what a user sees."
            .to_owned(),
    );
    if let (Some(a), Some(b)) = (
        stats(c.first_after_start.iter().copied()),
        stats(c.second_after_start.iter().copied()),
    ) {
        let finding = if a.median > 1.3 * b.median {
            "whichever chat is opened first is the slow one, so the first-open column measures \
             the UI warming up more than the history"
        } else {
            "the order makes little difference"
        };
        notes.push(format!(
            "First openings by their place after a start (the order alternates between \
             restarts): {} ms (median of {}) for the first chat opened, {} ms for the second; \
             {finding}.",
            ms(a.median),
            a.n,
            ms(b.median)
        ));
    }
    if let (Some(a), Some(b)) = (&wl, &ws) {
        notes.push(format!(
            "Cost against history: the {}-message chat opens in {} ms (median) against {} ms for \
             {} messages ({}).",
            count(c.seeded_messages),
            ms(a.median),
            ms(b.median),
            SHORT_CHAT,
            ratio(&wl, &ws, |s| s.median)
        ));
    }
    if let (Some(n), Some(rows)) = (c.loaded_after_pages, c.rows_after_pages) {
        notes.push(format!(
            "Virtualised list: with {} messages loaded, {} message rows were in the DOM. The \
             loaded count is read from the message list's React props (`conv.messages`), since \
             the DOM holds only the rows on screen.",
            count(n as usize),
            rows
        ));
    }
    if jumped > 0 {
        notes.push(format!(
            "After {jumped} of {} pages the view was left at the very top of the list (scroll \
             position 0, showing the new oldest messages) rather than on the messages that were \
             on screen; from there the app may load a further page by itself, and the next page \
             needs the list scrolled away from the top and back.",
            c.pages.len()
        ));
    }
    let self_loaded: u32 = c
        .pages
        .iter()
        .filter_map(|p| Some(p.loaded_settled?.saturating_sub(p.loaded_at?)))
        .sum();
    if self_loaded > 0 {
        notes.push(format!(
            "Besides the timed pages the app loaded {} more messages by itself while the list \
             settled at the top (counted in \"after the pages\").",
            count(self_loaded as usize)
        ));
    }
    if l.iter().any(|x| x.already) {
        notes.push(
            "In some launches the connect screen was already in the DOM when the WebDriver \
             session opened: for those the figure is the session's opening, an upper bound."
                .to_owned(),
        );
    }
    let others: Vec<&str> = [
        &r.login_screen_mem,
        &c.idle_mem,
        &c.first_open_mem,
        &c.reopened_mem,
        &c.paged_mem,
    ]
    .iter()
    .flat_map(|m| m.others.iter().map(String::as_str))
    .collect();
    if !others.is_empty() {
        notes.push(format!(
            "Other WebKit / natter processes were running during a memory reading ({}): they \
             share library pages with the app, which lowers its PSS; the private (USS) column \
             does not depend on them.",
            others.join(", ")
        ));
    }
    let (first, again) = (total_mib(&c.first_open_mem), total_mib(&c.reopened_mem));
    if first > 0.0 && again > first + 20.0 {
        notes.push(format!(
            "Memory grew from {first:.0} to {again:.0} MiB (PSS) between the first opening of \
             the long chat and the same chat open after {} more openings and closings of each \
             chat, {:.0} MiB of it in WebKitWebProcess (the page's JS heap and rendering), and \
             was not given back within {} s idle. The bench forces no garbage collection: this \
             is what the app holds, not necessarily what it leaks.",
            cfg.reps,
            pss_of(&c.reopened_mem, "WebKitWebProcess")
                - pss_of(&c.first_open_mem, "WebKitWebProcess"),
            cfg.idle.as_secs()
        ));
    }
    if let Some(tree) = (!c.idle_mem.procs.is_empty()).then_some(&c.idle_mem) {
        notes.push(format!(
            "Idle, logged in: {:.0} MiB against the ≈ {CITED_BARE_TAURI_MIB:.0} MB cited for a bare \
             Tauri window (a figure from the issue, not measured here; PSS shares the WebKit \
             libraries among the processes, so it is the fair sum).",
            total_mib(tree)
        ));
    }
    notes.push(
        "Xvfb renders in software on the CPU, with the server, the driver and the app sharing \
         the cores: absolute times are for this machine, ratios travel better."
            .to_owned(),
    );
    if !release {
        notes.push("The app is a debug build: not the figures to quote.".to_owned());
    }
    for n in notes {
        let _ = writeln!(o, "- {n}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_nearest_rank() {
        let s = stats((1..=10).map(f64::from)).expect("values");
        assert_eq!(
            (s.median, s.p90, s.min, s.max, s.n),
            (5.5, 9.0, 1.0, 10.0, 10)
        );
        assert!(stats(Vec::new()).is_none());
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(100), "100");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
