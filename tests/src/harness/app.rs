//! The real desktop app (`natter`, the Tauri binary) driven through WebDriver: one
//! `tauri-driver` per app instance on its own ports, WebKitWebDriver underneath, the app in real
//! WebKitGTK. Each instance has its own data directories (`XDG_*`, `NATTER_APP_DATA_DIR`), so two
//! apps run side by side and an instance can be restarted on the same data.
//!
//! Needs a display (`xvfb-run -a`), `tauri-driver` (or `TAURI_DRIVER_BIN`), `WebKitWebDriver`,
//! the app built with its UI (`NATTER_APP_BIN`, else `<target>/debug/natter`) and, for calls, a
//! sound server (PulseAudio, found with `pactl info` and handed to each instance). `.ci/run`
//! provides all of them. Screenshots go to `NATTER_ARTIFACTS_DIR` (default `artifacts/` in the
//! workspace).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// How long an element may take to appear or change.
pub const UI_TIMEOUT: Duration = Duration::from_secs(20);

/// WebDriver's code for the Enter key.
pub const ENTER: &str = "\u{E007}";
/// WebDriver's code for the Escape key.
pub const ESCAPE: &str = "\u{E00C}";

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The app binary under test.
pub fn app_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("NATTER_APP_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("no target dir above {}", exe.display()))?;
    let bin = profile_dir.join(format!("natter{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "{} is missing: build the UI (npm --prefix ui run build) and the app \
             (cargo build -p natter-app), or set NATTER_APP_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// Where screenshots are saved.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("NATTER_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts"))
        .join("screenshots")
}

/// The runner's PulseAudio, named for the app: each instance gets its own `XDG_CONFIG_HOME`, where
/// libpulse would otherwise look for the server's socket and cookie, and then ALSA's `default`
/// device (the pulse plugin, loaded only when a server answers) does not exist and no call can
/// open its microphone. Empty when there is no PulseAudio (or `PULSE_SERVER` is already set).
fn sound_server_env() -> Vec<(&'static str, OsString)> {
    if std::env::var_os("PULSE_SERVER").is_some() {
        return Vec::new();
    }
    let Ok(out) = Command::new("pactl")
        .arg("info")
        .env("LC_ALL", "C")
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let info = String::from_utf8_lossy(&out.stdout);
    let Some(server) = info
        .lines()
        .find_map(|l| l.strip_prefix("Server String:"))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let server = if server.starts_with('/') {
        format!("unix:{server}")
    } else {
        server.to_owned()
    };
    let mut env = vec![("PULSE_SERVER", OsString::from(server))];
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(cookie) = config
        .map(|c| c.join("pulse/cookie"))
        .filter(|c| c.is_file())
    {
        env.push(("PULSE_COOKIE", cookie.into_os_string()));
    }
    env
}

/// One running app instance.
pub struct AppInstance {
    name: String,
    dir: PathBuf,
    /// Extra environment for the app (e.g. the dialog stand-ins `NATTER_TEST_PICK`).
    env: Vec<(String, OsString)>,
    driver: Option<Child>,
    client: Option<Client>,
    log: PathBuf,
}

impl AppInstance {
    /// Starts the app for `name` with its data under `dir` (kept across [`restart`]).
    ///
    /// [`restart`]: AppInstance::restart
    pub async fn launch(name: &str, dir: &Path) -> Result<Self> {
        Self::launch_with_env(name, dir, Vec::new()).await
    }

    /// Like [`launch`](Self::launch), with extra environment variables for the app (kept across
    /// restarts). tauri-driver passes its environment down to WebKitWebDriver and the app.
    pub async fn launch_with_env(
        name: &str,
        dir: &Path,
        env: Vec<(String, OsString)>,
    ) -> Result<Self> {
        let mut app = Self {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            env,
            driver: None,
            client: None,
            log: dir.join("tauri-driver.log"),
        };
        app.start().await?;
        Ok(app)
    }

    async fn start(&mut self) -> Result<()> {
        // On a loaded machine tauri-driver sometimes fails to reach WebKitWebDriver before it
        // listens ("tcp connect error"); a fresh driver on fresh ports gets through.
        let mut last = None;
        for attempt in 1..=3 {
            match self.start_once().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    eprintln!(
                        "[{}] starting the app failed (attempt {attempt}): {e:#}",
                        self.name
                    );
                    self.quit().await;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("the app did not start")))
    }

    async fn start_once(&mut self) -> Result<()> {
        let bin = app_binary()?;
        let port = free_port()?;
        let native_port = free_port()?;
        for sub in ["xdg-data", "xdg-config", "xdg-cache", "natter"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let driver_bin =
            std::env::var_os("TAURI_DRIVER_BIN").unwrap_or_else(|| "tauri-driver".into());
        let mut command = Command::new(&driver_bin);
        // Its own process group, so that stopping it also stops the WebKitWebDriver it starts
        // (killing tauri-driver alone leaves that one orphaned until the display closes).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("XDG_DATA_HOME", self.dir.join("xdg-data"))
            .env("XDG_CONFIG_HOME", self.dir.join("xdg-config"))
            .env("XDG_CACHE_HOME", self.dir.join("xdg-cache"))
            .env("NATTER_APP_DATA_DIR", self.dir.join("natter"))
            .env("LANG", "en_US.UTF-8")
            // GPU compositing (Mesa's llvmpipe under Xvfb): with the app's default software
            // rendering, WebKitWebDriver's screenshots stall for tens of seconds or for good
            // once a window has lost the focus. Suites that check the shipped rendering (the
            // installed package, LAN hosting, the app benchmark) pass NATTER_GPU=0.
            .env("NATTER_GPU", "1")
            .envs(sound_server_env())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_os_str())))
            // Not WEBKIT_DISABLE_COMPOSITING_MODE: with it, WebDriver screenshots never return.
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {driver_bin:?} (cargo install tauri-driver)"))?;
        self.driver = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("tauri-driver did not listen on {addr}: {}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({ "application": bin.display().to_string() }),
        );
        caps.insert("browserName".into(), json!("wry"));
        eprintln!("[{}] opening a WebDriver session on {addr}", self.name);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .with_context(|| format!("opening a WebDriver session: {}", self.log_tail()))?;
        eprintln!("[{}] session open", self.name);
        self.client = Some(client);
        Ok(())
    }

    /// Quits the app (closing its window) and starts it again on the same data.
    pub async fn restart(&mut self) -> Result<()> {
        self.quit().await;
        self.start().await
    }

    /// Closes the session and the driver.
    pub async fn quit(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        if let Some(mut child) = self.driver.take() {
            stop_driver(&mut child);
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn client(&self) -> Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| anyhow!("{}'s app is not running", self.name))
    }

    /// The WebDriver session, for what the helpers here do not cover (scripts in the page).
    pub fn webdriver(&self) -> Result<&Client> {
        self.client()
    }

    /// The pid of this instance's `tauri-driver` (the app runs below it, under WebKitWebDriver).
    pub fn driver_pid(&self) -> Option<u32> {
        self.driver.as_ref().map(Child::id)
    }

    fn testid(id: &str) -> String {
        format!("[data-testid=\"{id}\"]")
    }

    /// Waits for the element with `data-testid=id`.
    pub async fn el(&self, id: &str) -> Result<Element> {
        self.css(&Self::testid(id)).await
    }

    /// Waits for the element matching a CSS selector.
    pub async fn css(&self, selector: &str) -> Result<Element> {
        let found = self
            .client()?
            .wait()
            .at_most(UI_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await;
        if found.is_err() {
            let _ = self.screenshot(&format!("FAILED-{}", self.name)).await;
        }
        found.with_context(|| {
            format!(
                "{}: no element {selector} appeared\n--- the app's log ---\n{}",
                self.name,
                self.log_tail()
            )
        })
    }

    /// All elements matching a CSS selector now.
    pub async fn all(&self, selector: &str) -> Result<Vec<Element>> {
        Ok(self.client()?.find_all(Locator::Css(selector)).await?)
    }

    /// An element's text content. WebKitWebDriver's "element text" (visible text) came back
    /// empty for text that was plainly on screen, so this asks the DOM instead.
    pub async fn text_of(&self, el: &Element) -> Result<String> {
        let value = self
            .client()?
            .execute(
                "return arguments[0].textContent;",
                vec![serde_json::to_value(el)?],
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The page's HTML (for diagnosing a failure).
    pub async fn page_html(&self) -> Result<String> {
        Ok(self.client()?.source().await?)
    }

    /// Is an element with this test id present now?
    pub async fn has(&self, id: &str) -> Result<bool> {
        Ok(!self.all(&Self::testid(id)).await?.is_empty())
    }

    /// Clicks an element.
    pub async fn click(&self, id: &str) -> Result<()> {
        self.el(id)
            .await?
            .click()
            .await
            .with_context(|| format!("{}: clicking {id}", self.name))
    }

    /// Types into an input (after clearing it).
    pub async fn fill(&self, id: &str, text: &str) -> Result<()> {
        let el = self.el(id).await?;
        el.clear().await?;
        el.send_keys(text).await?;
        Ok(())
    }

    /// Types into an input without clearing it (e.g. Enter).
    pub async fn keys(&self, id: &str, text: &str) -> Result<()> {
        self.el(id).await?.send_keys(text).await?;
        Ok(())
    }

    /// Waits until `check` holds, polling; `what` describes it for the failure.
    pub async fn until<F, Fut>(&self, what: &str, mut check: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            match check().await {
                Ok(true) => return Ok(()),
                Ok(false) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(false) => {
                    let _ = self.screenshot(&format!("FAILED-{}", self.name)).await;
                    bail!(
                        "{}: timed out waiting for {what}\n--- the app's log ---\n{}",
                        self.name,
                        self.log_tail()
                    )
                }
                Err(e) => return Err(e.context(format!("{}: waiting for {what}", self.name))),
            }
        }
    }

    /// Waits for a message bubble whose text contains `text`, returning it.
    pub async fn message(&self, text: &str) -> Result<Element> {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            for el in self.all("[data-testid=\"message\"]").await? {
                if self.text_of(&el).await.unwrap_or_default().contains(text) {
                    return Ok(el);
                }
            }
            if Instant::now() > deadline {
                let _ = self.screenshot(&format!("FAILED-{}", self.name)).await;
                bail!("{}: no message containing {text:?} appeared", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the bubble containing `text` to reach `state` (`sent`, `delivered`…).
    pub async fn message_state(&self, text: &str, state: &str) -> Result<()> {
        self.until(&format!("{text:?} to be {state}"), || async move {
            let el = self.message(text).await?;
            Ok(el.attr("data-state").await?.as_deref() == Some(state))
        })
        .await
    }

    /// Waits for an element's text to contain `text`.
    pub async fn text_contains(&self, id: &str, text: &str) -> Result<()> {
        self.until(&format!("{id} to show {text:?}"), || async move {
            let el = self.el(id).await?;
            Ok(self.text_of(&el).await?.contains(text))
        })
        .await
    }

    /// Runs a script in the page and returns what it returns.
    pub async fn script(
        &self,
        js: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        Ok(self.client()?.execute(js, args).await?)
    }

    /// Waits for an element matching `selector` whose attribute `attr` is one of `values`,
    /// returning the value it has.
    pub async fn attr_in(&self, selector: &str, attr: &str, values: &[&str]) -> Result<String> {
        let found = std::cell::RefCell::new(String::new());
        self.until(&format!("{selector}[{attr}] in {values:?}"), || {
            let found = &found;
            async move {
                for el in self.all(selector).await? {
                    if let Some(v) = el.attr(attr).await? {
                        if values.contains(&v.as_str()) {
                            *found.borrow_mut() = v;
                            return Ok(true);
                        }
                    }
                }
                Ok(false)
            }
        })
        .await?;
        Ok(found.into_inner())
    }

    /// Waits for an attribute value.
    pub async fn attr_is(&self, id: &str, attr: &str, value: &str) -> Result<()> {
        self.until(&format!("{id}[{attr}={value}]"), || async move {
            Ok(self.el(id).await?.attr(attr).await?.as_deref() == Some(value))
        })
        .await
    }

    /// Saves a PNG of the window as `<artifacts>/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let client = self.client()?;
        // WebKit under Xvfb hands out the last frame it painted; wait for two animation frames
        // (and a little more) so the screenshot shows what the DOM has now.
        let _ = client
            .execute_async(
                "const done = arguments[0]; \
                 requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 150)));",
                vec![],
            )
            .await;
        // A stalled snapshot (WebKit in software mode under Xvfb) must fail, not hang the suite.
        let png = tokio::time::timeout(UI_TIMEOUT * 3, client.screenshot())
            .await
            .map_err(|_| {
                anyhow!(
                    "the screenshot {name} did not come within {:?}",
                    UI_TIMEOUT * 3
                )
            })??;
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }
}

/// Fills the connect screen with the test server's TLS port and connects.
pub async fn connect(app: &AppInstance, server: &crate::TestServer) -> Result<()> {
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

/// Kills tauri-driver and everything in its process group (WebKitWebDriver, the app).
fn stop_driver(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for AppInstance {
    fn drop(&mut self) {
        if let Some(mut child) = self.driver.take() {
            stop_driver(&mut child);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {}'s tauri-driver log ---\n{}",
                self.name,
                self.log_tail()
            );
        }
    }
}
