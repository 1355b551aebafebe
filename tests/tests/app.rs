//! The desktop app end to end: two real app instances (Tauri + WebKitGTK, driven through
//! tauri-driver) against the real server. Ignored by a plain `cargo test` because it needs the
//! built app, tauri-driver and a display; `.ci/run` runs it with `--ignored` under `xvfb-run`.
//!
//! Screenshots of the main screens are saved as artifacts (see `harness::app`).

use std::path::Path;

use anyhow::{Context, Result};
use natter_e2e::harness::app::{connect, AppInstance, ENTER, ESCAPE};
use natter_e2e::harness::desktop::{ElsewhereWindow, NotificationBus};
use natter_e2e::harness::netns;
use natter_e2e::{befriend, password_for, TestServer};

const ALICE_PASSWORD: &str = "correct horse 7";

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

#[tokio::test]
#[ignore = "needs the built app, tauri-driver, a display, dbus-daemon and dunst: run by .ci/run"]
async fn messages_to_alice_in_the_background_reach_her_desktop_and_stay_unread_across_restarts(
) -> Result<()> {
    let server = TestServer::start().await?;
    let dirs = tempfile::tempdir()?;
    let mut bob = server.user("bobby").await?;
    {
        let mut alice = server.user("alice").await?;
        befriend(&mut alice, &mut bob).await?;
    }
    let bus = NotificationBus::start(&dirs.path().join("bus"))?;
    let mut alice =
        AppInstance::launch_with_env("alice", &dirs.path().join("alice"), bus.env()).await?;
    log_in(&alice, &server, "alice").await?;

    // Bob writes while alice's window is in the background: the desktop announces it, in the
    // words of the message, and the daemon takes it.
    let elsewhere = ElsewhereWindow::focus()?;
    alice
        .until("the window to lose the focus", || async {
            let focused = alice.script("return document.hasFocus()", vec![]).await?;
            Ok(focused.as_bool() == Some(false))
        })
        .await?;
    bob.send_text("alice", "你好 alice, are you there?").await?;
    let shown = bus.wait_for("from bobby", |n| n.summary == "bobby").await?;
    assert_eq!(shown.body, "你好 alice, are you there?");
    assert_eq!(shown.app, "Natter");
    assert!(
        bus.shown_by_daemon()? >= 1,
        "dunst did not take the notification"
    );
    alice.text_contains("unread-bobby", "1").await?;

    // Two more; alice's app restarts before she reads them: the count is still there.
    bob.send_text("alice", "second").await?;
    bob.send_text("alice", "third").await?;
    alice.text_contains("unread-bobby", "3").await?;
    drop(elsewhere);
    alice.restart().await?;
    alice.el("main-view").await?;
    alice.text_contains("unread-bobby", "3").await?;

    // She opens the chat: the divider sits above the first unread message, the count goes.
    alice.click("conv-user-bobby").await?;
    let first = alice.message("你好 alice, are you there?").await?;
    alice.el("unread-divider").await?;
    let divider_y = alice
        .script(
            "return document.querySelector('[data-testid=unread-divider]').getBoundingClientRect().top",
            vec![],
        )
        .await?;
    let first_y = first.rectangle().await?.1;
    assert!(
        divider_y.as_f64().unwrap_or(f64::MAX) < first_y,
        "the divider is above the first unread message"
    );
    alice
        .until("the unread count to go", || async {
            Ok(!alice.has("unread-bobby").await?)
        })
        .await?;
    alice.screenshot("26-unread-divider").await?;

    // Read stays read: after another restart there is no count and no divider.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    alice.restart().await?;
    alice.el("main-view").await?;
    alice.text_contains("conv-user-bobby", "third").await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !alice.has("unread-bobby").await?,
        "read messages came back as unread"
    );
    alice.click("conv-user-bobby").await?;
    alice.message("third").await?;
    assert!(!alice.has("unread-divider").await?);
    alice.quit().await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the built app, tauri-driver, a display and root for a network namespace: run by .ci/run"]
async fn alice_hosts_a_server_bob_finds_it_on_the_lan_they_chat_and_her_quitting_ends_it(
) -> Result<()> {
    // mDNS is multicast: the whole scenario runs in a network namespace with only `lo`.
    if !netns::in_private_network(
        "alice_hosts_a_server_bob_finds_it_on_the_lan_they_chat_and_her_quitting_ends_it",
    )? {
        return Ok(());
    }
    let dirs = tempfile::tempdir()?;
    // As shipped: software rendering.
    let shipped = || vec![("NATTER_GPU".into(), "0".into())];
    let mut alice =
        AppInstance::launch_with_env("alice", &dirs.path().join("alice"), shipped()).await?;
    let mut bob =
        AppInstance::launch_with_env("bobby", &dirs.path().join("bobby"), shipped()).await?;

    // Alice hosts from the connect screen: her server shows its addresses and fingerprint,
    // and appears in her own list as this computer.
    alice.el("lan-empty").await?;
    alice.click("host-open").await?;
    alice.click("host-start").await?;
    let fingerprint = alice
        .el("host-fingerprint")
        .await?
        .attr("data-fingerprint")
        .await?
        .unwrap_or_default();
    assert_eq!(fingerprint.len(), 64, "a SHA-256 in hex: {fingerprint}");
    alice.text_contains("host-addresses", "127.0.0.1:").await?;
    let own = format!("[data-testid=lan-server][data-fingerprint='{fingerprint}']");
    alice.attr_in(&own, "data-own", &["true"]).await?;
    alice.screenshot("27-hosting").await?;

    // Bob's app finds it with the same fingerprint and connects without a certificate prompt.
    bob.attr_in(&own, "data-own", &["false"]).await?;
    bob.screenshot("28-lan-server-found").await?;
    bob.css(&format!("{own} [data-testid=lan-connect]"))
        .await?
        .click()
        .await?;
    bob.click("tab-guest").await?;
    bob.fill("guest-username", "bobby").await?;
    bob.keys("guest-username", ENTER).await?;
    bob.el("main-view").await?;

    alice
        .css(&format!("{own} [data-testid=lan-connect]"))
        .await?
        .click()
        .await?;
    alice.click("tab-guest").await?;
    alice.fill("guest-username", "alice").await?;
    alice.keys("guest-username", ENTER).await?;
    alice.el("main-view").await?;

    // They chat in the square of alice's computer.
    alice.click("conv-square").await?;
    alice.fill("composer-input", "欢迎来到我的服务器").await?;
    alice.keys("composer-input", ENTER).await?;
    bob.click("conv-square").await?;
    bob.message("欢迎来到我的服务器").await?;
    bob.fill("composer-input", "thanks for hosting").await?;
    bob.keys("composer-input", ENTER).await?;
    alice.message("thanks for hosting").await?;
    bob.screenshot("29-chat-on-a-hosted-server").await?;

    // Alice quits: her server goes with her app, and bob's app says it lost the server.
    alice.quit().await;
    bob.attr_in(
        "[data-testid=connection-banner]",
        "data-state",
        &["connecting", "offline"],
    )
    .await?;
    bob.quit().await;
    Ok(())
}

/// Logs an account made by the test in through the login form.
async fn log_in(app: &AppInstance, server: &TestServer, username: &str) -> Result<()> {
    connect(app, server).await?;
    app.click("tab-password").await?;
    app.fill("login-username", username).await?;
    app.fill("login-password", &password_for(username)).await?;
    app.click("login-submit").await?;
    app.el("main-view").await?;
    Ok(())
}

/// A real PNG of a gradient with a disc (the thumbnail must show a picture, not a blank).
fn picture(width: u32, height: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let (cx, cy) = (width as i64 * 7 / 10, height as i64 * 3 / 10);
        let (dx, dy) = (x as i64 - cx, y as i64 - cy);
        if dx * dx + dy * dy < (height as i64 / 6).pow(2) {
            image::Rgb([255, 246, 220])
        } else {
            image::Rgb([
                (40 + x * 200 / width) as u8,
                (90 + y * 120 / height) as u8,
                (200 - x * 120 / width) as u8,
            ])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// What the open dialog "picks" next in `app`'s window (see NATTER_TEST_PICK in the README).
fn will_pick(list: &Path, files: &[&Path]) -> Result<()> {
    let lines: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(list, lines.join("\n"))?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the built app, tauri-driver and a display: run by .ci/run"]
async fn alice_sends_bob_a_file_and_an_image_he_saves_and_opens_full_size() -> Result<()> {
    let server = TestServer::start().await?;
    let dirs = tempfile::tempdir()?;
    {
        let mut alice = server.user("alice").await?;
        let mut bob = server.user("bobby").await?;
        befriend(&mut alice, &mut bob).await?;
    }
    let pick_list = dirs.path().join("alice-picks.txt");
    will_pick(&pick_list, &[])?;
    let downloads = dirs.path().join("bob-downloads");
    std::fs::create_dir_all(&downloads)?;
    let alice = AppInstance::launch_with_env(
        "alice",
        &dirs.path().join("alice"),
        vec![("NATTER_TEST_PICK".into(), pick_list.clone().into())],
    )
    .await?;
    let bob = AppInstance::launch_with_env(
        "bobby",
        &dirs.path().join("bobby"),
        vec![("NATTER_TEST_SAVE_DIR".into(), downloads.clone().into())],
    )
    .await?;
    log_in(&alice, &server, "alice").await?;
    log_in(&bob, &server, "bobby").await?;
    alice.click("conv-user-bobby").await?;
    bob.click("conv-user-alice").await?;

    // Alice attaches a file (48 MiB of noise): both chats show its card. She pauses the upload
    // at once, so bob's download has to wait for bytes the server does not have yet.
    let payload = natter_e2e::harness::files::file_bytes(48 << 20, 7);
    let source = dirs.path().join("季度数据 2024.bin");
    std::fs::write(&source, &payload)?;
    will_pick(&pick_list, &[&source])?;
    alice.click("composer-attach").await?;
    let sending = alice
        .attr_in(
            "[data-testid=file-card]",
            "data-state",
            &["uploading", "uploaded"],
        )
        .await?;
    let paused = sending == "uploading"
        && alice.click("transfer-pause").await.is_ok()
        && alice
            .attr_in(
                "[data-testid=file-card]",
                "data-state",
                &["paused", "uploaded", "done"],
            )
            .await?
            == "paused";
    if paused {
        alice.text_contains("file-card", "Paused").await?;
        alice.screenshot("12-file-upload-paused").await?;
    } else {
        eprintln!("the upload finished before the pause: no in-progress screenshots this run");
    }
    bob.attr_is("file-card", "data-state", "offered").await?;
    bob.text_contains("file-card", "季度数据 2024.bin").await?;
    bob.text_contains("file-card", "48 MB").await?;
    bob.screenshot("12-file-offer").await?;

    // Bob accepts (saved in his downloads folder) and sees the progress.
    bob.click("transfer-accept").await?;
    if paused {
        bob.attr_is("file-card", "data-state", "downloading")
            .await?;
        // What the server already has comes down (into a partial file); the rest waits for alice.
        let partial = || -> u64 {
            std::fs::read_dir(&downloads)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0)
        };
        bob.until("the uploaded part to come down", || async {
            Ok(partial() > 0)
        })
        .await?;
        bob.el("transfer-progress").await?;
        bob.screenshot("13-file-downloading").await?;
        alice.click("transfer-resume").await?;
    }
    bob.attr_is("file-card", "data-state", "done").await?;
    bob.text_contains("file-status", "Saved to").await?;
    let saved = downloads.join("季度数据 2024.bin");
    assert!(
        std::fs::read(&saved)? == payload,
        "the saved file differs from the one sent"
    );
    alice.attr_is("file-card", "data-state", "done").await?;
    alice.text_contains("file-status", "Sent").await?;
    bob.screenshot("14-file-saved").await?;

    // Alice sends a picture with the image button: bob sees the thumbnail at its size.
    let png = picture(1200, 800)?;
    let photo = dirs.path().join("sunrise.png");
    std::fs::write(&photo, &png)?;
    will_pick(&pick_list, &[&photo])?;
    alice.click("composer-image").await?;
    let thumb = bob.el("image-thumb").await?;
    let size = bob
        .script(
            "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];",
            vec![serde_json::to_value(&thumb)?],
        )
        .await?;
    assert_eq!(size, serde_json::json!([260, 173]), "the thumbnail's box");
    alice.el("image-thumb").await?;
    bob.screenshot("15-image-bubble").await?;

    // A click opens it full size from natter-image://; Escape closes it.
    thumb.click().await?;
    bob.attr_is("image-viewer", "data-state", "loaded").await?;
    let natural = bob
        .script(
            "const i = document.querySelector('[data-testid=image-full]'); \
             return [i.naturalWidth, i.naturalHeight, i.currentSrc];",
            vec![],
        )
        .await?;
    assert_eq!(natural[0], 1200, "{natural}");
    assert_eq!(natural[1], 800, "{natural}");
    assert!(
        natural[2]
            .as_str()
            .unwrap_or_default()
            .contains("natter-image"),
        "{natural}"
    );
    bob.screenshot("16-image-viewer").await?;
    bob.keys("image-viewer-close", ESCAPE).await?;
    bob.until("the viewer to close", || async {
        Ok(!bob.has("image-viewer").await?)
    })
    .await?;

    // Alice opens her own picture full size: her app serves the copy it sent from.
    alice.click("image-thumb").await?;
    alice
        .attr_is("image-viewer", "data-state", "loaded")
        .await?;
    alice.keys("image-viewer-close", ESCAPE).await?;

    // Files dragged over the Square: the overlay says only images go there (the OS drag
    // itself cannot be driven here; the window's drag events are).
    alice.click("conv-square").await?;
    alice
        .script(
            "return window.__TAURI_INTERNALS__.invoke('plugin:event|emit', \
             {event: 'tauri://drag-enter', payload: {paths: [], position: {x: 400, y: 300}}});",
            vec![],
        )
        .await?;
    alice.text_contains("drop-overlay", "Only images").await?;
    alice.screenshot("17-drop-square").await?;
    alice
        .script(
            "return window.__TAURI_INTERNALS__.invoke('plugin:event|emit', \
             {event: 'tauri://drag-leave', payload: null});",
            vec![],
        )
        .await?;
    alice
        .until("the overlay to go", || async {
            Ok(!alice.has("drop-overlay").await?)
        })
        .await?;

    // Dropped on a private chat: the picture goes as an image, the other file as an offer.
    alice.click("conv-user-bobby").await?;
    let second = dirs.path().join("whiteboard.png");
    std::fs::write(&second, picture(600, 900)?)?;
    let notes = dirs.path().join("notes.txt");
    std::fs::write(&notes, "meeting notes\n")?;
    alice
        .script(
            "return window.__TAURI_INTERNALS__.invoke('plugin:event|emit', \
             {event: 'tauri://drag-enter', payload: {paths: [], position: {x: 400, y: 300}}});",
            vec![],
        )
        .await?;
    alice
        .text_contains("drop-overlay", "file offers to bobby")
        .await?;
    alice.screenshot("18-drop-private").await?;
    alice
        .script(
            "return window.__TAURI_INTERNALS__.invoke('plugin:event|emit', \
             {event: 'tauri://drag-drop', payload: {paths: arguments[0], position: {x: 400, y: 300}}});",
            vec![serde_json::json!([second.display().to_string(), notes.display().to_string()])],
        )
        .await?;
    bob.until("the dropped image and file to arrive", || async {
        Ok(bob.all("[data-testid=image-thumb]").await?.len() == 2
            && bob.all("[data-testid=file-card]").await?.len() == 2)
    })
    .await?;
    assert!(!alice.has("drop-overlay").await?);

    // The whiteboard's bytes are damaged on the server's disk before bob opens it: his app
    // refuses them and says why, in words.
    let mut whiteboard = None;
    for thumb in bob.all("[data-testid=image-thumb]").await? {
        if thumb.attr("title").await?.as_deref() == Some("whiteboard.png") {
            whiteboard = Some(thumb);
        }
    }
    let whiteboard = whiteboard.context("the whiteboard's thumbnail")?;
    let file_id = whiteboard
        .attr("data-file-id")
        .await?
        .context("the thumbnail names its transfer")?;
    let stored = server.stored_file(&file_id);
    let mut bytes = std::fs::read(&stored)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&stored, &bytes)?;
    whiteboard.click().await?;
    bob.attr_is("image-viewer", "data-state", "error").await?;
    bob.text_contains("image-error-reason", "does not match its checksum")
        .await?;
    bob.screenshot("19-image-damaged").await?;
    bob.keys("image-viewer-close", ESCAPE).await?;

    let (mut alice, mut bob) = (alice, bob);
    alice.quit().await;
    bob.quit().await;
    Ok(())
}

/// Seconds in a call duration as the bar shows it (`0:07`, `1:02:03`).
fn call_seconds(text: &str) -> Option<u64> {
    text.trim().split(':').try_fold(0u64, |total, part| {
        Some(total * 60 + part.parse::<u64>().ok()?)
    })
}

/// Waits until `app`'s call bar has counted at least `seconds` of talking.
async fn talked_for(app: &AppInstance, seconds: u64) -> Result<()> {
    app.until(&format!("the call to last {seconds} s"), || async {
        let duration = app.el("call-duration").await?;
        Ok(call_seconds(&app.text_of(&duration).await?).is_some_and(|s| s >= seconds))
    })
    .await
}

#[tokio::test]
#[ignore = "needs the built app, tauri-driver, a display and a sound server: run by .ci/run"]
async fn alice_calls_bob_they_talk_she_mutes_and_hangs_up_then_alice_declines_bobs_call(
) -> Result<()> {
    let server = TestServer::start().await?;
    let dirs = tempfile::tempdir()?;
    {
        let mut alice = server.user("alice").await?;
        let mut bob = server.user("bobby").await?;
        befriend(&mut alice, &mut bob).await?;
    }
    let alice = AppInstance::launch("alice", &dirs.path().join("alice")).await?;
    let bob = AppInstance::launch("bobby", &dirs.path().join("bobby")).await?;
    log_in(&alice, &server, "alice").await?;
    log_in(&bob, &server, "bobby").await?;

    // Alice chooses her microphone among the system's (PulseAudio through ALSA here); it is
    // saved with her settings and the call below records from it.
    alice.click("settings-open").await?;
    let options = "[data-testid=settings-microphone] option";
    alice
        .until("the microphones to be listed", || async {
            Ok(alice.all(options).await?.len() > 1)
        })
        .await?;
    let mut names = Vec::new();
    for option in alice.all(options).await? {
        names.push(option.attr("value").await?.unwrap_or_default());
    }
    // ALSA names its devices by their descriptions ("PulseAudio Sound Server" is `pulse`).
    let microphone = names
        .iter()
        .find(|n| n.as_str() == "PulseAudio Sound Server")
        .or_else(|| names.iter().find(|n| n.contains("PulseAudio")))
        .with_context(|| format!("no PulseAudio microphone among {names:?}"))?
        .clone();
    let microphone = microphone.as_str();
    alice
        .script(
            "document.querySelector('[data-testid=settings-calls]').scrollIntoView();",
            vec![],
        )
        .await
        .context("scrolling to the calls settings")?;
    alice
        .el("settings-microphone")
        .await?
        .select_by_value(microphone)
        .await
        .context("choosing the microphone")?;
    let settings = dirs.path().join("alice/natter/settings.json");
    alice
        .until("the microphone to be saved", || async {
            let saved: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&settings).unwrap_or_default())
                    .unwrap_or_default();
            Ok(saved["audio_input"] == microphone)
        })
        .await?;
    alice.screenshot("19-settings-calls").await?;
    alice.click("settings-close").await?;

    // The call button is in a friend's chat, not in the square.
    alice.click("conv-square").await?;
    alice.text_contains("chat-title", "Square").await?;
    assert!(
        !alice.has("call-start").await?,
        "no call button in the square"
    );
    alice.click("conv-user-bobby").await?;
    alice.attr_is("call-start", "data-blocked", "none").await?;

    // Alice calls; bob's window rings with her name on it.
    alice.click("call-start").await?;
    alice.attr_is("call-bar", "data-phase", "calling").await?;
    alice.text_contains("call-status", "Calling").await?;
    bob.text_contains("incoming-call", "alice is calling you")
        .await?;
    bob.screenshot("20-incoming-call").await?;

    // Bob accepts: both see the call connect and the time count up from the audio's start.
    bob.click("call-accept").await?;
    bob.until("the incoming dialog to go", || async {
        Ok(!bob.has("incoming-call").await?)
    })
    .await?;
    for app in [&alice, &bob] {
        app.attr_is("call-bar", "data-phase", "active").await?;
        app.el("call-level").await?;
    }
    talked_for(&alice, 2).await?;
    talked_for(&bob, 2).await?;
    // A second call to the same person cannot start while this one runs.
    alice.attr_is("call-start", "data-blocked", "busy").await?;
    alice.screenshot("21-in-call").await?;

    // Alice mutes: her bar says so and the call goes on.
    alice.click("call-mute").await?;
    alice.attr_is("call-mute", "aria-pressed", "true").await?;
    alice.attr_is("call-bar", "data-muted", "true").await?;
    alice.text_contains("call-status", "Muted").await?;
    alice.screenshot("22-in-call-muted").await?;
    talked_for(&alice, 3).await?;
    bob.attr_is("call-bar", "data-phase", "active").await?;

    // Alice hangs up: both see that the call ended and for how long, then the bar goes.
    alice.click("call-hangup").await?;
    for app in [&alice, &bob] {
        app.attr_is("call-bar", "data-phase", "ended").await?;
        app.attr_is("call-bar", "data-reason", "hangup").await?;
        app.text_contains("call-status", "Call ended · ").await?;
    }
    bob.screenshot("23-call-ended").await?;
    for app in [&alice, &bob] {
        app.until("the call bar to go", || async {
            Ok(!app.has("call-bar").await?)
        })
        .await?;
    }

    // Bob calls back; alice declines; bob reads that she did.
    bob.click("conv-user-alice").await?;
    bob.attr_is("call-start", "data-blocked", "none").await?;
    bob.click("call-start").await?;
    alice.el("incoming-call").await?;
    alice.click("call-decline").await?;
    bob.attr_is("call-bar", "data-reason", "rejected").await?;
    bob.text_contains("call-status", "alice declined").await?;
    bob.screenshot("24-call-declined").await?;
    alice
        .text_contains("call-status", "You declined the call")
        .await?;
    bob.until("the call bar to go", || async {
        Ok(!bob.has("call-bar").await?)
    })
    .await?;

    let (mut alice, mut bob) = (alice, bob);
    alice.quit().await;
    bob.quit().await;
    Ok(())
}
