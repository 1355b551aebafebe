//! The desktop app end to end: two real app instances (Tauri + WebKitGTK, driven through
//! tauri-driver) against the real server. Ignored by a plain `cargo test` because it needs the
//! built app, tauri-driver and a display; `.ci/run` runs it with `--ignored` under `xvfb-run`.
//!
//! Screenshots of the main screens are saved as artifacts (see `harness::app`).

use anyhow::Result;
use natter_e2e::harness::app::{AppInstance, ENTER, ESCAPE};
use natter_e2e::TestServer;

const ALICE_PASSWORD: &str = "correct horse 7";

/// Fills the connect screen with the test server's TLS port and connects.
async fn connect(app: &AppInstance, server: &TestServer) -> Result<()> {
    app.fill("connect-host", "127.0.0.1").await?;
    let tls = app.el("connect-tls").await?;
    if !tls.is_selected().await? {
        tls.click().await?;
    }
    app.fill("connect-port", &server.tls_addr()?.port().to_string())
        .await?;
    app.click("connect-submit").await?;
    app.el("tab-password").await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the built app, tauri-driver and a display: run by .ci/run"]
async fn two_people_use_the_app_from_sign_up_to_a_message_sent_while_the_server_was_down(
) -> Result<()> {
    let mut server = TestServer::start().await?;
    let dirs = tempfile::tempdir()?;

    // Alice signs up: live availability, the rules, then straight into the main window.
    let mut alice = AppInstance::launch("alice", &dirs.path().join("alice")).await?;
    alice.screenshot("01-connect").await?;
    connect(&alice, &server).await?;
    alice.click("tab-register").await?;
    alice.fill("reg-username", "admin").await?;
    alice
        .attr_is("reg-username-status", "data-state", "reserved")
        .await?;
    alice.fill("reg-username", "alice").await?;
    alice
        .attr_is("reg-username-status", "data-state", "available")
        .await?;
    alice.fill("reg-password", ALICE_PASSWORD).await?;
    alice.fill("reg-password2", ALICE_PASSWORD).await?;
    alice.fill("reg-nickname", "爱丽丝").await?;
    alice.fill("reg-motto", "Fast, small, reliable").await?;
    alice.screenshot("02-register").await?;
    alice.click("reg-submit").await?;
    alice.el("main-view").await?;
    alice.text_contains("me-name", "alice").await?;

    // Bob tries a reserved guest name first and is told why, then gets in as a guest.
    let bob = AppInstance::launch("bobby", &dirs.path().join("bobby")).await?;
    connect(&bob, &server).await?;
    bob.click("tab-guest").await?;
    bob.fill("guest-username", "admin").await?;
    bob.click("guest-submit").await?;
    bob.text_contains("form-error", "reserved").await?;
    bob.screenshot("03-guest-reserved-name").await?;
    bob.fill("guest-username", "bobby").await?;
    bob.keys("guest-username", ENTER).await?;
    bob.el("main-view").await?;

    // Alice asks bob to be friends; bob accepts; each sees the other online.
    alice.click("add-friend-open").await?;
    alice.fill("add-friend-username", "bobby").await?;
    alice.fill("add-friend-message", "我是爱丽丝").await?;
    alice.screenshot("04-add-friend").await?;
    alice.click("add-friend-submit").await?;
    bob.text_contains("request-alice", "我是爱丽丝").await?;
    bob.screenshot("05-friend-request").await?;
    bob.click("request-accept-alice").await?;
    bob.attr_is("presence-alice", "data-online", "true").await?;
    alice
        .attr_is("presence-bobby", "data-online", "true")
        .await?;

    // They chat: alice sees her message go to "delivered"; bob sees an unread badge first.
    alice.click("conv-user-bobby").await?;
    alice.text_contains("chat-title", "bobby").await?;
    alice
        .fill("composer-input", "你好 bob, how are you?")
        .await?;
    alice.keys("composer-input", ENTER).await?;
    alice
        .message_state("你好 bob, how are you?", "delivered")
        .await?;
    bob.text_contains("unread-alice", "1").await?;
    bob.click("conv-user-alice").await?;
    bob.message("你好 bob, how are you?").await?;
    bob.fill("composer-input", "我们明天再说话吧").await?;
    bob.click("composer-send").await?;
    alice.message("我们明天再说话吧").await?;
    alice.screenshot("05-private-chat").await?;

    // The square: everyone online sees it, with the sender's name.
    alice.click("conv-square").await?;
    alice.fill("composer-input", "大家好，我是爱丽丝").await?;
    alice.keys("composer-input", ENTER).await?;
    bob.click("conv-square").await?;
    let in_square = bob.message("大家好，我是爱丽丝").await?;
    assert_eq!(in_square.attr("data-mine").await?.as_deref(), Some("false"));
    bob.screenshot("06-square").await?;

    // Alice's app restarts: she is logged back in and her history is there.
    alice.restart().await?;
    alice.el("main-view").await?;
    alice.click("conv-user-bobby").await?;
    alice.message("你好 bob, how are you?").await?;
    alice.message("我们明天再说话吧").await?;

    // Search finds a Chinese phrase and jumps to the message in its chat.
    alice.click("conv-square").await?;
    alice.fill("search-input", "说话").await?;
    alice.el("search-result").await?;
    alice.screenshot("07-search").await?;
    alice.click("search-result").await?;
    alice.text_contains("chat-title", "bobby").await?;
    let hit = alice.message("我们明天再说话吧").await?;
    assert_eq!(hit.attr("data-highlighted").await?.as_deref(), Some("true"));

    // The server goes down: a banner says so; a message typed meanwhile is delivered after.
    server.kill9()?;
    alice.el("connection-banner").await?;
    alice
        .fill("composer-input", "sent while the server was down")
        .await?;
    alice.keys("composer-input", ENTER).await?;
    alice
        .message_state("sent while the server was down", "sending")
        .await?;
    alice.screenshot("08-offline").await?;
    server.restart().await?;
    bob.text_contains("unread-alice", "1").await?;
    bob.click("conv-user-alice").await?;
    bob.message("sent while the server was down").await?;
    alice
        .message_state("sent while the server was down", "delivered")
        .await?;

    // Settings: the language switches the whole window to Chinese.
    alice.click("settings-open").await?;
    alice.screenshot("09-settings").await?;
    let language = alice.el("settings-language").await?;
    language.select_by_value("zh-CN").await?;
    alice.click("settings-close").await?;
    alice.keys("search-input", ESCAPE).await?;
    alice.text_contains("conv-square", "广场").await?;
    alice.screenshot("10-main-zh").await?;

    // Alice starts the app while the server is down: her account opens offline with its
    // history, and logs in by itself when the server is back.
    server.kill9()?;
    alice.restart().await?;
    alice.el("main-view").await?;
    alice.click("conv-user-bobby").await?;
    alice
        .attr_is("connection-banner", "data-state", "connecting")
        .await?;
    alice.message("我们明天再说话吧").await?;
    alice.screenshot("11-started-offline").await?;
    server.restart().await?;
    alice
        .until("the banner to go once the server is back", || async {
            Ok(!alice.has("connection-banner").await?)
        })
        .await?;

    alice.quit().await;
    let mut bob = bob;
    bob.quit().await;
    Ok(())
}
