//! `natter-server`: parses flags, binds, serves until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use natter_server::{Cli, Config, Listeners};

fn raise_fd_limit() {
    // Each session is a socket; the usual soft limit of 1024 would cap us far below the target.
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
        if soft < hard {
            if let Err(e) = rlimit::Resource::NOFILE.set(hard, hard) {
                tracing::warn!(error = %e, "could not raise the open-file limit");
            }
        }
    }
}

/// Installs the SIGINT/SIGTERM handlers at once and returns a future that resolves on either.
/// Installed before the ready file is written: a supervisor (or a test) that stops the server
/// right after it said it is up must find it listening for the signal, not killed by it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    raise_fd_limit();
    let config = Config::resolve(Cli::parse()).context("while reading the configuration")?;
    let shutdown = shutdown_signal();
    let listeners = Listeners::bind(&config)
        .await
        .with_context(|| format!("while binding the listeners on {}", config.bind))?;
    if let Some(path) = &config.ready_file {
        listeners
            .write_ready_file(path)
            .with_context(|| format!("while writing the ready file {}", path.display()))?;
    }
    eprintln!(
        "natter-server: plain {} tls {} relay udp {} data {}",
        listeners.plain_addr()?,
        listeners
            .tls_addr()?
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        listeners.relay_addr()?,
        config.data_dir.display()
    );
    natter_server::run(listeners, config, shutdown)
        .await
        .context("while serving")
}
