//! The Tauri commands through Tauri's real IPC handler (mock runtime, no window), against the real
//! `natter-server` binary: what the UI sends is what natter-core receives, errors come back as
//! `{code, message}`, events reach the window, settings survive a restart.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use natter_app::ipc::Settings;
use natter_app::state::AppState;
use natter_e2e::harness::core::Device;
use natter_e2e::harness::server::TestServer;
use serde_json::{json, Value};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime};
use tauri::{Listener, Manager, WebviewWindow};

struct App {
    _app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    events: mpsc::Receiver<Value>,
}

fn app(data_dir: &Path) -> App {
    let app = natter_app::builder(mock_builder())
        .build(mock_context(noop_assets()))
        .expect("mock app builds");
    app.manage(AppState::load(data_dir.to_path_buf()));
    let (tx, events) = mpsc::channel();
    app.listen_any(natter_app::EVENT, move |e| {
        if let Ok(v) = serde_json::from_str::<Value>(e.payload()) {
            let _ = tx.send(v);
        }
    });
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("mock window");
    App {
        _app: app,
        window,
        events,
    }
}

impl App {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        self.invoke_with(cmd, tauri::ipc::InvokeBody::Json(args), Default::default())
    }

    /// One IPC call as the webview makes it, with the reply decoded as JSON.
    fn invoke_with(
        &self,
        cmd: &str,
        body: tauri::ipc::InvokeBody,
        headers: tauri::http::HeaderMap,
    ) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            tauri::webview::InvokeRequest {
                cmd: cmd.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                url: "tauri://localhost".parse().expect("url"),
                body,
                headers,
                invoke_key: tauri::test::INVOKE_KEY.to_string(),
            },
        )
        .map(|b| b.deserialize::<Value>().expect("json reply"))
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    fn err_code(&self, cmd: &str, args: Value) -> String {
        let e = self
            .invoke(cmd, args)
            .expect_err(&format!("{cmd} should fail"));
        e["code"].as_str().unwrap_or_default().to_owned()
    }

    fn wait_event(&self, what: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(v) if what(&v) => return v,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("the event did not come");
    }
}

fn server() -> TestServer {
    tauri::async_runtime::block_on(TestServer::start()).expect("server starts")
}

fn plain(server: &TestServer) -> Value {
    json!({"host": "127.0.0.1", "port": server.plain_addr().port(), "tls": false})
}

#[test]
fn settings_default_persist_and_survive_a_damaged_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = app(dir.path());
    let info = a.ok("app_info", json!({}));
    assert_eq!(info["settings"]["server"]["port"], 4399);
    assert_eq!(info["settings"]["server"]["tls"], true);
    assert_eq!(info["settings"]["notifications"], true);

    let mut settings: Settings =
        serde_json::from_value(info["settings"].clone()).expect("settings parse");
    settings.language = Some("zh-CN".into());
    settings.notifications = false;
    a.ok("save_settings", json!({ "settings": settings }));
    drop(a);

    // A restart reads them back.
    let state = AppState::load(dir.path().to_path_buf());
    assert_eq!(state.settings().language.as_deref(), Some("zh-CN"));
    assert!(!state.settings().notifications);

    // A damaged file does not keep the app from starting; defaults apply.
    std::fs::write(dir.path().join("settings.json"), b"{ not json").expect("write");
    let a = app(dir.path());
    let info = a.ok("app_info", json!({}));
    assert_eq!(info["settings"]["notifications"], true);
}

#[test]
fn commands_before_connecting_and_bad_servers_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = app(dir.path());
    assert_eq!(
        a.err_code(
            "login",
            json!({"username": "alice", "password": "password1"})
        ),
        "not_connected"
    );
    assert_eq!(
        a.err_code(
            "connect",
            json!({"server": {"host": "  ", "port": 4004, "tls": false}})
        ),
        "invalid_server"
    );
    // Nothing listens on this port (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let code = a.err_code(
        "connect",
        json!({"server": {"host": "127.0.0.1", "port": port, "tls": false}}),
    );
    assert!(
        ["network", "offline", "timeout"].contains(&code.as_str()),
        "{code}"
    );
    // A failed connect does not overwrite the saved server.
    assert_eq!(
        a.ok("app_info", json!({}))["settings"]["server"]["port"],
        4399
    );
    // Malformed arguments are refused by the IPC layer, not a panic.
    assert!(a.invoke("search", json!({"query": 5})).is_err());
}

#[test]
fn a_user_registers_logs_in_chats_searches_and_gets_events() {
    let server = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = app(dir.path());
    a.ok("connect", json!({ "server": plain(&server) }));

    let check = a.ok("check_username", json!({"username": "alice"}));
    assert_eq!(check["available"], true);
    let check = a.ok("check_username", json!({"username": "admin"}));
    assert_eq!(check["available"], false);
    assert_eq!(check["reason"], "reserved_username");

    let form = json!({"username": "alice", "password": "correct horse", "nickname": "爱丽丝",
                      "motto": "hi", "phone": ""});
    let profile = a.ok("register", json!({ "form": form }));
    assert_eq!(profile["nickname"], "爱丽丝");
    assert_eq!(
        a.err_code("register", json!({ "form": form })),
        "username_taken"
    );
    assert_eq!(
        a.err_code(
            "login",
            json!({"username": "alice", "password": "wrong password"})
        ),
        "bad_credentials"
    );
    let session = a.ok(
        "login",
        json!({"username": "alice", "password": "correct horse"}),
    );
    assert_eq!(session["profile"]["username"], "alice");
    assert_eq!(
        a.ok("app_info", json!({}))["settings"]["last_user"],
        "alice"
    );

    let square = json!({"kind": "square"});
    let sent = a.ok("send_text", json!({"to": square, "text": "我在说话 hello"}));
    assert_eq!(sent["state"], "sending");
    let client_id = sent["client_msg_id"].as_str().expect("id").to_owned();
    let ev = a.wait_event(|v| v["type"] == "sent" && v["client_msg_id"] == client_id.as_str());
    let msg_id = ev["msg_id"].as_i64().expect("msg id");

    let hits = a.ok("search", json!({"query": "说话", "limit": 10}));
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
    assert_eq!(hits[0]["message"]["msg_id"], msg_id);
    assert_eq!(hits[0]["with"]["kind"], "square");
    let window = a.ok(
        "history_around",
        json!({"with": square, "msg_id": msg_id, "limit": 10}),
    );
    assert_eq!(window["older"][0]["msg_id"], msg_id);
    assert_eq!(window["newer"].as_array().map(Vec::len), Some(0));

    // Someone else in the square reaches the window as an event.
    let bob = tauri::async_runtime::block_on(async {
        let bob = Device::fresh("bobguest", &server).expect("bob");
        bob.log_in_as_guest().await.expect("bob logs in");
        bob.send_text(natter_proto::Target::Square, "大家好")
            .await
            .expect("bob sends");
        bob
    });
    let ev = a.wait_event(|v| v["type"] == "message" && v["message"]["from"] == "bobguest");
    assert_eq!(ev["message"]["body"]["text"], "大家好");
    assert_eq!(ev["message"]["state"], "received");
    drop(bob);

    a.ok("logout", json!({}));
    assert!(a.ok("app_info", json!({}))["settings"]["last_user"].is_null());
    assert_eq!(
        a.err_code("guest_login", json!({"username": "admin"})),
        "reserved_username"
    );
}

#[test]
fn tls_connect_pins_the_servers_certificate() {
    let server = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = app(dir.path());
    let port = server.tls_addr().expect("tls").port();
    let info = a.ok(
        "connect",
        json!({"server": {"host": "127.0.0.1", "port": port, "tls": true}}),
    );
    let expected = server.ready().cert_sha256.clone().expect("fingerprint");
    assert_eq!(info["fingerprint"], expected.as_str());
}

#[test]
fn a_changed_certificate_is_refused_until_the_user_trusts_it() {
    let mut server = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = app(dir.path());
    let port = server.tls_addr().expect("tls").port();
    let tls = json!({"server": {"host": "127.0.0.1", "port": port, "tls": true}});
    let first = a.ok("connect", tls.clone())["fingerprint"].clone();

    // The server gets a new certificate (same address); the app's next contact meets it.
    std::fs::remove_dir_all(server.data_dir().join("tls")).expect("remove the certificate");
    tauri::async_runtime::block_on(server.restart()).expect("restart");
    let a = app(dir.path());
    let refused = a
        .invoke("connect", tls.clone())
        .expect_err("a changed certificate");
    assert_eq!(refused["code"], "certificate_changed");
    let new = refused["fingerprint"]
        .as_str()
        .expect("the new fingerprint")
        .to_owned();
    assert_ne!(json!(new), first);
    assert_eq!(
        new,
        server.ready().cert_sha256.clone().expect("fingerprint")
    );

    a.ok("accept_certificate", json!({ "fingerprint": new }));
    assert_eq!(a.ok("connect", tls)["fingerprint"], new.as_str());
}

/// A small real PNG (a gradient), as a person would paste or pick.
fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 160])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode a PNG");
    out.into_inner()
}

/// Registers and logs in `name` on a fresh app.
fn signed_in(dir: &Path, server: &TestServer, name: &str) -> App {
    let a = app(dir);
    a.ok("connect", json!({ "server": plain(server) }));
    let form = json!({"username": name, "password": "password 123", "nickname": "",
                      "motto": "", "phone": ""});
    a.ok("register", json!({ "form": form }));
    a.ok(
        "login",
        json!({"username": name, "password": "password 123"}),
    );
    a
}

impl App {
    fn wait_transfer(&self, file_id: &str, state: &str) -> Value {
        self.wait_event(|v| {
            v["type"] == "transfer"
                && v["transfer"]["file_id"] == file_id
                && v["transfer"]["state"] == state
        })
    }

    fn invoke_raw(
        &self,
        cmd: &str,
        body: Vec<u8>,
        headers: &[(&'static str, String)],
    ) -> Result<Value, Value> {
        let mut map = tauri::http::HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().expect("header value"));
        }
        self.invoke_with(cmd, tauri::ipc::InvokeBody::Raw(body), map)
    }
}

#[test]
fn a_file_offered_through_the_commands_arrives_whole_and_a_pasted_image_full_size() {
    let server = server();
    let dirs = tempfile::tempdir().expect("tempdir");
    let alice = signed_in(&dirs.path().join("alice"), &server, "alice");
    let bob = signed_in(&dirs.path().join("bob"), &server, "bobby");
    alice.ok("friend_request", json!({"to": "bobby", "message": ""}));
    bob.ok("friend_respond", json!({"from": "alice", "accept": true}));

    // Alice picks a file (the test stands in for the dialog) and offers it.
    let data: Vec<u8> = (0..700_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let source = dirs.path().join("季度报告.bin");
    std::fs::write(&source, &data).expect("write the file");
    let list = dirs.path().join("pick.txt");
    std::fs::write(&list, format!("{}\n", source.display())).expect("write the pick list");
    std::env::set_var(natter_app::dialog::TEST_PICK, &list);
    let picked = alice.ok("pick_files", json!({"images_only": false}));
    assert_eq!(picked, json!([source.display().to_string()]));
    let sent = alice.ok(
        "send_file",
        json!({"to": "bobby", "path": picked[0].as_str().expect("a path")}),
    );
    assert_eq!(sent["direction"], "up");
    assert_eq!(sent["name"], "季度报告.bin");
    let file_id = sent["file_id"].as_str().expect("file id").to_owned();

    // Bob sees the offer card and the offer, accepts into a folder of his, and gets it whole.
    let card = bob.wait_event(|v| v["type"] == "message" && v["message"]["body"]["kind"] == "file");
    assert_eq!(card["message"]["body"]["file_id"], file_id.as_str());
    assert_eq!(card["message"]["body"]["size"], data.len());
    let offered = bob.ok("transfers", json!({}));
    assert!(
        offered
            .as_array()
            .expect("a list")
            .iter()
            .any(|t| t["file_id"] == file_id.as_str() && t["state"] == "offered"),
        "{offered}"
    );
    let save_dir = dirs.path().join("bob-downloads");
    std::fs::create_dir_all(&save_dir).expect("mkdir");
    std::env::set_var(natter_app::dialog::TEST_SAVE_DIR, &save_dir);
    let accepted = bob.ok("accept_file", json!({"file_id": file_id, "dest": null}));
    assert_eq!(accepted["accepted"], true);
    let done = bob.wait_transfer(&file_id, "done");
    let saved = save_dir.join("季度报告.bin");
    assert_eq!(done["transfer"]["path"], saved.display().to_string());
    assert!(std::fs::read(&saved).expect("the saved file") == data);
    alice.wait_transfer(&file_id, "done");
    // Once answered, the offer cannot be declined any more.
    assert!(bob
        .invoke("reject_file", json!({"file_id": file_id}))
        .is_err());

    // Alice pastes an image into the square: raw bytes, target and name in headers.
    let picture = png(320, 200);
    let headers = [
        (
            natter_app::files::HEADER_TO,
            "%7B%22kind%22%3A%22square%22%7D".to_owned(),
        ),
        (
            natter_app::files::HEADER_NAME,
            "%E6%88%AA%E5%9B%BE.png".to_owned(),
        ),
    ];
    let image = alice
        .invoke_raw("send_image_data", picture.clone(), &headers)
        .unwrap_or_else(|e| panic!("send_image_data failed: {e}"));
    assert_eq!(image["kind"], "image");
    assert_eq!(image["name"], "截图.png");
    let image_id = image["file_id"].as_str().expect("file id").to_owned();
    let posted =
        bob.wait_event(|v| v["type"] == "message" && v["message"]["body"]["kind"] == "image");
    let body = &posted["message"]["body"];
    assert_eq!(body["file_id"], image_id.as_str());
    assert_eq!(
        (body["width"].clone(), body["height"].clone()),
        (json!(320), json!(200))
    );
    assert!(!body["thumbnail"].as_str().unwrap_or_default().is_empty());

    // Bob's window asks natter-image:// for it: the full image, typed from its bytes.
    let handle = bob._app.handle().clone();
    let response = tauri::async_runtime::block_on(natter_app::image_protocol::answer(
        handle.clone(),
        format!("/{image_id}"),
    ));
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.body().as_ref() == picture.as_slice());
    // Anything else is refused without touching the disk.
    let refused = tauri::async_runtime::block_on(natter_app::image_protocol::answer(
        handle,
        "/../../etc/passwd".to_owned(),
    ));
    assert_eq!(refused.status(), 400);

    // Not an image: refused before any upload, with a code the UI can word.
    let not_image = alice.invoke_raw("send_image_data", b"hello".to_vec(), &headers);
    let code = not_image.expect_err("not an image")["code"].clone();
    assert_eq!(code, "invalid_field");
}

impl App {
    fn wait_call(&self, phase: &str) -> Value {
        self.wait_event(|v| v["type"] == "call" && v["call"]["phase"] == phase)["call"].clone()
    }
}

#[test]
fn a_call_rings_through_the_commands_and_is_declined_or_cancelled() {
    let server = server();
    let dirs = tempfile::tempdir().expect("tempdir");
    let alice = signed_in(&dirs.path().join("alice"), &server, "alice");
    let bob = signed_in(&dirs.path().join("bob"), &server, "bobby");
    alice.ok("friend_request", json!({"to": "bobby", "message": ""}));
    bob.ok("friend_respond", json!({"from": "alice", "accept": true}));
    assert!(alice.ok("current_call", json!({})).is_null());

    // Alice rings bob; bob's window hears it ring; he declines and alice is told.
    let calling = alice.ok("call", json!({"to": "bobby"}));
    assert_eq!(calling["phase"], "calling");
    assert_eq!(calling["peer"], "bobby");
    assert_eq!(calling["outgoing"], true);
    let ringing = bob.wait_call("ringing");
    assert_eq!(ringing["peer"], "alice");
    assert_eq!(ringing["outgoing"], false);
    assert_eq!(
        bob.ok("current_call", json!({}))["call_id"],
        ringing["call_id"]
    );
    // One call at a time.
    assert!(alice.invoke("call", json!({"to": "bobby"})).is_err());
    bob.ok(
        "answer_call",
        json!({"call_id": ringing["call_id"], "accept": false}),
    );
    let ended = alice.wait_call("ended");
    assert_eq!(ended["reason"], "rejected");
    assert!(ended["since"].is_null());
    assert_eq!(bob.wait_call("ended")["reason"], "rejected");
    assert!(alice.ok("current_call", json!({})).is_null());

    // Bob calls back and gives up before alice answers.
    let calling = bob.ok("call", json!({"to": "alice"}));
    alice.wait_call("ringing");
    bob.ok("hang_up", json!({"call_id": calling["call_id"]}));
    let ended = alice.wait_call("ended");
    assert_eq!(ended["reason"], "hangup");
    assert_eq!(ended["outgoing"], false);
    // Nothing to mute and no level without a call.
    assert!(alice.ok("set_muted", json!({"muted": true})).is_null());
    assert_eq!(alice.ok("call_level", json!({})), json!(0.0));
}

#[test]
fn the_chosen_microphone_and_speaker_are_saved_with_the_settings() {
    let server = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = signed_in(dir.path(), &server, "alice");
    let saved = a.ok(
        "set_audio_devices",
        json!({"input": "USB Headset Microphone", "output": null}),
    );
    assert_eq!(saved["audio_input"], "USB Headset Microphone");
    assert!(saved["audio_output"].is_null());
    // Saving other settings from the UI's copy keeps them.
    let mut settings: Settings = serde_json::from_value(saved).expect("settings parse");
    settings.notifications = false;
    a.ok("save_settings", json!({ "settings": settings }));
    drop(a);
    let state = AppState::load(dir.path().to_path_buf());
    assert_eq!(
        state.settings().audio_input.as_deref(),
        Some("USB Headset Microphone")
    );
    assert_eq!(state.settings().audio_output, None);
    // Settings written before calls existed still load, with the system's devices.
    std::fs::write(
        dir.path().join("settings.json"),
        br#"{"server":{"host":"127.0.0.1","port":4004,"tls":false},"notifications":true}"#,
    )
    .expect("write");
    let state = AppState::load(dir.path().to_path_buf());
    assert_eq!(state.settings().audio_input, None);
    assert_eq!(state.settings().server.port, 4004);
}
