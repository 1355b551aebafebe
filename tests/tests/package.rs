//! The app as people install it: `.ci/run` builds the .deb (scripts/package.sh), installs it with
//! apt and runs this suite against the installed binary (`NATTER_APP_BIN=/usr/bin/natter`), then
//! removes the package. It proves the bundle holds everything the app needs at run time: the
//! embedded UI served over the production asset protocol, the icons, the libraries.

use anyhow::{ensure, Result};
use natter_e2e::harness::app::{app_binary, connect, AppInstance, ENTER};
use natter_e2e::TestServer;

#[tokio::test]
#[ignore = "needs the .deb installed and a display: run by .ci/run"]
async fn the_installed_app_opens_at_the_connect_screen_and_a_guest_gets_in() -> Result<()> {
    let bin = app_binary()?;
    ensure!(
        bin.starts_with("/usr"),
        "this suite is for the installed package, not {}",
        bin.display()
    );
    let server = TestServer::start().await?;
    let dirs = tempfile::tempdir()?;
    // As shipped: software rendering.
    let app = AppInstance::launch_with_env(
        "installed",
        &dirs.path().join("app"),
        vec![("NATTER_GPU".into(), "0".into())],
    )
    .await?;
    // No screenshots here: WebKitWebDriver's snapshots stall in software mode under Xvfb (see
    // harness::app); the DOM says what the window shows.
    app.el("connect-host").await?;
    connect(&app, &server).await?;
    app.click("tab-guest").await?;
    app.fill("guest-username", "packaged").await?;
    app.keys("guest-username", ENTER).await?;
    app.el("main-view").await?;
    app.text_contains("me-name", "packaged").await?;
    let mut app = app;
    app.quit().await;
    Ok(())
}
