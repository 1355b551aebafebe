//! Measurements taken inside the app's page: each is one asynchronous WebDriver script that
//! starts the clock (`performance.now()`), acts (a click, a scroll), watches the DOM with a
//! MutationObserver and answers with the elapsed time, so WebDriver's own round trips are not
//! part of any figure. Every script gives up after [`SCRIPT_TIMEOUT_MS`].

use anyhow::{bail, Context, Result};
use fantoccini::Client;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long one in-page measurement may wait (below WebDriver's 30 s script timeout).
pub const SCRIPT_TIMEOUT_MS: u64 = 20_000;

async fn run<T: for<'de> Deserialize<'de>>(
    client: &Client,
    what: &str,
    script: &str,
    args: Vec<Value>,
) -> Result<T> {
    let value = client
        .execute_async(script, args)
        .await
        .with_context(|| format!("while running the {what} script"))?;
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        bail!("{what}: {error}");
    }
    serde_json::from_value(value.clone()).with_context(|| format!("{what}: unexpected {value}"))
}

/// One chat opening.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Opened {
    /// Click → the newest message's bubble (with its text) is in the DOM.
    pub dom_ms: f64,
    /// Click → the first frame after that was painted (a `requestAnimationFrame`, then a task).
    pub paint_ms: f64,
    /// Message bubbles in the DOM at that moment.
    pub rows: u32,
    /// Messages the chat held at that moment, if readable.
    pub loaded: Option<u32>,
}

const OPEN_CHAT: &str = r#"
const [convId, msgId, text, timeoutMs, done] = arguments;
const conv = document.querySelector(`[data-testid="${convId}"]`);
if (!conv) { done({ error: `no ${convId} in the conversation list` }); return; }
const selector = `[data-testid="message"][data-msg-id="${msgId}"]`;
const shown = () => {
  const bubble = document.querySelector(selector);
  const body = bubble && bubble.querySelector('[data-testid="message-text"]');
  return !!body && body.textContent.includes(text);
};
if (shown()) { done({ error: 'the newest message was already shown before the click' }); return; }
let finished = false;
let observer = null;
const t0 = performance.now();
const finish = () => {
  if (finished) return;
  finished = true;
  const dom = performance.now() - t0;
  const rows = document.querySelectorAll('[data-testid="message"]').length;
  const list = document.querySelector('[data-testid="message-list"]');
  const loaded = list ? loadedCount(list) : null;
  observer.disconnect();
  clearTimeout(timer);
  requestAnimationFrame(() => setTimeout(() => {
    done({ dom_ms: dom, paint_ms: performance.now() - t0, rows, loaded });
  }, 0));
};
observer = new MutationObserver(() => { if (shown()) finish(); });
observer.observe(document.body, { childList: true, subtree: true, characterData: true });
const timer = setTimeout(() => {
  if (finished) return;
  finished = true;
  observer.disconnect();
  done({ error: `the newest message (${msgId}) did not appear within ${timeoutMs} ms` });
}, timeoutMs);
conv.click();
if (shown()) finish();
"#;

/// Clicks `conv_testid` and times it until the bubble of `msg_id` showing `text` is in the DOM.
pub async fn open_chat(
    client: &Client,
    conv_testid: &str,
    msg_id: i64,
    text: &str,
) -> Result<Opened> {
    let script = format!("{LOADED_COUNT}{OPEN_CHAT}");
    run(
        client,
        "open-chat",
        &script,
        vec![
            json!(conv_testid),
            json!(msg_id.to_string()),
            json!(text),
            json!(SCRIPT_TIMEOUT_MS),
        ],
    )
    .await
}

const LEAVE_CHAT: &str = r#"
const [convId, msgId, timeoutMs, done] = arguments;
const conv = document.querySelector(`[data-testid="${convId}"]`);
if (!conv) { done({ error: `no ${convId} in the conversation list` }); return; }
const selector = `[data-testid="message"][data-msg-id="${msgId}"]`;
conv.click();
const deadline = performance.now() + timeoutMs;
const poll = () => {
  if (!document.querySelector(selector)) {
    requestAnimationFrame(() => requestAnimationFrame(() => done({ ok: true })));
  } else if (performance.now() > deadline) {
    done({ error: `message ${msgId} was still shown after switching away` });
  } else {
    requestAnimationFrame(poll);
  }
};
poll();
"#;

#[derive(Deserialize)]
struct Ok {
    #[allow(dead_code)]
    ok: bool,
}

/// Switches to `conv_testid` (the square) and waits until the bubble of `msg_id` is gone.
pub async fn leave_chat(client: &Client, conv_testid: &str, msg_id: i64) -> Result<()> {
    let _: Ok = run(
        client,
        "leave-chat",
        LEAVE_CHAT,
        vec![
            json!(conv_testid),
            json!(msg_id.to_string()),
            json!(SCRIPT_TIMEOUT_MS),
        ],
    )
    .await?;
    Ok(())
}

/// Reads how many messages the open chat holds from the message list's React props (the
/// `conv.messages` its component was rendered with): the virtualised DOM shows only a window of
/// them. `null` if the UI is not shaped that way (then the counts are reported as unknown).
const LOADED_COUNT: &str = r#"
const loadedCount = (list) => {
  const key = Object.keys(list).find((k) => k.startsWith('__reactFiber$'));
  let fiber = key ? list[key] : null;
  for (let i = 0; fiber && i < 40; i += 1, fiber = fiber.return) {
    const props = fiber.memoizedProps;
    if (props && props.conv && Array.isArray(props.conv.messages)) return props.conv.messages.length;
  }
  return null;
};
"#;

/// One page of older messages.
#[derive(Debug, Clone, Deserialize)]
pub struct Paged {
    /// Scroll to the top → older messages were put in front of the loaded ones.
    pub ms: f64,
    /// Messages the chat held before the scroll, when the page came in, and once the list was
    /// still again (the app may load a further page by itself); `None` if unreadable.
    pub loaded_before: Option<u32>,
    pub loaded_at: Option<u32>,
    pub loaded_settled: Option<u32>,
    /// Message bubbles in the DOM once the list was still again.
    pub rows: u32,
    /// The list's scroll position then: 0 means the view jumped to the new oldest messages
    /// instead of staying on the ones the user was reading.
    pub scroll_top: f64,
    /// How the page was noticed: `count` (the chat's message count grew), `shifted` (a row's
    /// index grew: rows were put in front of it) or `grew` (the list grew by over 2,000 px).
    pub how: String,
}

const PAGE_OLDER: &str = r#"
const [timeoutMs, done] = arguments;
const list = document.querySelector('[data-testid="message-list"]');
if (!list) { done({ error: 'no message-list' }); return; }
const EDGE = 600;
const rows = () => list.querySelectorAll('[data-testid="message"]').length;
const T0 = performance.now();
const trace = [];
const note = (what) => {
  if (trace.length < 40) trace.push(`${Math.round(performance.now() - T0)}:${what}@${list.scrollTop}`);
};
// Waits until the list has been still (no DOM change, same scroll position) for 5 frames, at
// most 2 s: the virtualizer corrects the scroll position after it measures rows, and a late
// correction would undo a scroll to the top.
const settle = (then) => {
  let changes = 0;
  let last = list.scrollTop;
  let quiet = 0;
  let frames = 0;
  const watch = new MutationObserver(() => { changes += 1; });
  watch.observe(list, { childList: true, subtree: true, attributes: true });
  const tick = () => {
    frames += 1;
    if (changes > 0 || list.scrollTop !== last) note(`s${changes}`);
    quiet = changes === 0 && list.scrollTop === last ? quiet + 1 : 0;
    changes = 0;
    last = list.scrollTop;
    if (quiet >= 5 || frames > 120) { watch.disconnect(); then(); } else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
};
const start = () => {
  let finished = false;
  let observer = null;
  const before = loadedCount(list);
  const heightBefore = list.scrollHeight;
  const t0 = performance.now();
  const found = (how) => {
    if (finished) return;
    finished = true;
    const ms = performance.now() - t0;
    const at = loadedCount(list);
    observer.disconnect();
    clearTimeout(timer);
    settle(() => done({
      ms, how, loaded_before: before, loaded_at: at, loaded_settled: loadedCount(list),
      rows: rows(), scroll_top: list.scrollTop,
    }));
  };
  const check = (records) => {
    if (finished) return;
    note(`m${records.length}`);
    const now = loadedCount(list);
    if (before !== null && now !== null && now > before) { found('count'); return; }
    for (const r of records) {
      if (r.type === 'attributes' && r.oldValue !== null &&
          Number(r.target.getAttribute('data-index')) > Number(r.oldValue)) {
        found('shifted');
        return;
      }
    }
    if (before === null && list.scrollHeight > heightBefore + 2000) found('grew');
  };
  observer = new MutationObserver(check);
  observer.observe(list, {
    childList: true, subtree: true, attributes: true,
    attributeFilter: ['data-index'], attributeOldValue: true,
  });
  const timer = setTimeout(() => {
    if (finished) return;
    finished = true;
    observer.disconnect();
    const notes = Array.from(list.querySelectorAll('.list-loading, .list-beginning, .chat-empty'))
      .map((e) => e.textContent).join(' | ');
    done({ error: `no older messages came in within ${timeoutMs} ms (${loadedCount(list)} loaded, ` +
      `scrollTop ${list.scrollTop} of ${list.scrollHeight}; ${notes}; trace ${trace.join(' ')})` });
  }, timeoutMs);
  note('top');
  list.scrollTop = 0;
};
// Already near the top (the last page came in without moving the view): step away first, so
// the scroll to the top is a real scroll, which is what asks for the next page.
note('begin');
if (list.scrollTop < EDGE + 200) list.scrollTop = EDGE + 400;
settle(start);
"#;

/// Scrolls the open chat's list to the top and times it until older messages are prepended.
pub async fn page_older(client: &Client) -> Result<Paged> {
    let script = format!("{LOADED_COUNT}{PAGE_OLDER}");
    run(
        client,
        "page-older",
        &script,
        vec![json!(SCRIPT_TIMEOUT_MS)],
    )
    .await
}

/// How fast the start screen showed, seen from inside the page.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct FirstScreen {
    /// Wall clock (Unix ms) when the login screen's first field was seen in the DOM (or when
    /// the script first looked, if it was already there).
    pub seen_at: f64,
    /// Whether it was already there when the script first looked.
    pub already: bool,
    /// Wall clock (Unix ms) of the page's navigation start.
    pub origin: f64,
    /// First contentful paint, ms after navigation start, if WebKit reports it.
    pub fcp_ms: Option<f64>,
}

const FIRST_SCREEN: &str = r#"
const [timeoutMs, done] = arguments;
const selector = '[data-testid="connect-host"], [data-testid="tab-password"]';
const fcp = () => {
  const e = performance.getEntriesByType('paint').find((p) => p.name === 'first-contentful-paint');
  return e ? e.startTime : null;
};
let finished = false;
let observer = null;
const answer = (already) => {
  if (finished) return;
  finished = true;
  const seen = Date.now();
  if (observer) observer.disconnect();
  done({ seen_at: seen, already, origin: performance.timeOrigin, fcp_ms: fcp() });
};
if (document.querySelector(selector)) { answer(true); return; }
const deadline = performance.now() + timeoutMs;
observer = new MutationObserver(() => { if (document.querySelector(selector)) answer(false); });
observer.observe(document, { childList: true, subtree: true });
const giveUp = () => {
  if (finished) return;
  if (performance.now() > deadline) {
    finished = true;
    observer.disconnect();
    done({ error: 'the connect / login screen did not appear' });
  } else {
    setTimeout(giveUp, 250);
  }
};
setTimeout(giveUp, 250);
"#;

/// Waits for the connect (or login) screen and reports when it appeared.
pub async fn first_screen(client: &Client) -> Result<FirstScreen> {
    run(
        client,
        "first-screen",
        FIRST_SCREEN,
        vec![json!(SCRIPT_TIMEOUT_MS)],
    )
    .await
}
