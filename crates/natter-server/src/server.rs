//! Listeners, the accept loops, housekeeping, and orderly shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_proto::{ErrorCode, Frame, FrameCodec, ServerMessage};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;

use crate::calls::{self, Calls};
use crate::cluster::{ClusterError, Member};
use crate::config::Config;
use crate::hub::Hub;
use crate::persist::Writer;
use crate::ratelimit::IpLimiter;
use crate::store::{MessageLog, PgLog, SqliteLog, Store, StoreError};
use crate::tls::{TlsError, TlsSetup};
use crate::transfer::{self, blobs::Blobs, Transfers};
use crate::{conn, now_ms, Ctx};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The cluster bus failed.
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// Binding or another socket operation failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The database could not be opened or migrated.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// TLS setup failed.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The voice relay's UDP port could not be bound.
    #[error("voice relay on UDP {addr}: {source}")]
    Relay {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The directory for transfer bytes could not be created.
    #[error("file store {path}: {source}")]
    Files {
        /// The directory.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Bound sockets, ready to serve.
pub struct Listeners {
    /// Plain TCP.
    pub plain: TcpListener,
    /// TLS listener and its certificate.
    pub tls: Option<(TcpListener, TlsSetup)>,
    /// The voice relay's UDP socket.
    pub relay: UdpSocket,
}

impl Listeners {
    /// Binds the configured ports and prepares TLS.
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        let plain = TcpListener::bind(SocketAddr::new(config.bind, config.port)).await?;
        let tls = match config.tls_port {
            Some(port) => {
                std::fs::create_dir_all(&config.data_dir)?;
                let setup =
                    crate::tls::load_or_create(&config.data_dir, config.tls_files.as_ref())?;
                let listener = TcpListener::bind(SocketAddr::new(config.bind, port)).await?;
                Some((listener, setup))
            }
            None => None,
        };
        let relay_addr = SocketAddr::new(config.bind, config.relay_port);
        let relay = UdpSocket::bind(relay_addr)
            .await
            .map_err(|source| ServerError::Relay {
                addr: relay_addr,
                source,
            })?;
        Ok(Self { plain, tls, relay })
    }

    /// The bound plain address.
    pub fn plain_addr(&self) -> std::io::Result<SocketAddr> {
        self.plain.local_addr()
    }

    /// The bound TLS address.
    pub fn tls_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.tls.as_ref().map(|(l, _)| l.local_addr()).transpose()
    }

    /// The bound relay address.
    pub fn relay_addr(&self) -> std::io::Result<SocketAddr> {
        self.relay.local_addr()
    }

    /// Writes the ready file: addresses and certificate fingerprint, atomically.
    pub fn write_ready_file(&self, path: &Path) -> std::io::Result<()> {
        let doc = serde_json::json!({
            "plain": self.plain_addr()?.to_string(),
            "tls": self.tls_addr()?.map(|a| a.to_string()),
            "relay": self.relay_addr()?.to_string(),
            "cert_sha256": self.tls.as_ref().map(|(_, t)| t.cert_sha256.clone()),
            "cert_pem": self.tls.as_ref().map(|(_, t)| t.cert_path.display().to_string()),
            "pid": std::process::id(),
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, doc.to_string())?;
        std::fs::rename(&tmp, path)
    }
}

/// Runs the server on bound listeners until `shutdown` resolves, then closes every connection
/// (each gets `kicked {reason: "shutdown"}`), drains the message writer and returns.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let db_path = config.data_dir.join("natter.db");
    let store = match &config.database_url {
        Some(url) => Store::connect(url).await?,
        None => Store::open(&db_path).await?,
    };
    tracing::info!(backend = ?store.backend(), "store open");
    // Nobody is online after a (re)start: guests' grace periods start now.
    store.touch_all_guests(now_ms()).await?;
    let files_dir = config.files_dir.clone();
    let blobs = Blobs::open(&files_dir).map_err(|source| ServerError::Files {
        path: files_dir.clone(),
        source,
    })?;
    let transfers = Transfers::new(blobs);
    transfers.recover(&store).await;
    let hub = Arc::new(Hub::default());
    let relay_addr = listeners.relay_addr()?;
    let calls = Arc::new(Calls::new(&config, relay_addr.port()));
    // The bus stops after the writer, so the last deliveries still reach other nodes.
    let bus_stop = CancellationToken::new();
    let (bus, cluster) = match &config.nats_url {
        Some(url) => {
            let member = Member::join(
                url,
                &config.cluster_name,
                hub.clone(),
                calls.clone(),
                config.node_timeout,
            )
            .await?;
            let link = member.link();
            (Some(tokio::spawn(member.run(bus_stop.clone()))), Some(link))
        }
        None => (None, None),
    };
    let log: Box<dyn MessageLog> = match &config.database_url {
        Some(url) => Box::new(PgLog::connect(url).await?),
        None => Box::new(SqliteLog::open(&db_path)?),
    };
    let (writer, writer_thread) = Writer::spawn(log, hub.clone(), now_ms)?;
    let ctx = Arc::new(Ctx {
        config: config.clone(),
        store: store.clone(),
        hub: hub.clone(),
        writer,
        ip_limits: IpLimiter::default(),
        transfers,
        calls: calls.clone(),
        cluster,
        clock: now_ms,
        conn_ids: AtomicU64::new(1),
    });
    let cancel = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut tasks = JoinSet::new();

    tracing::info!(plain = %listeners.plain_addr()?, tls = ?listeners.tls_addr()?, relay = %relay_addr, "natter-server listening");
    tasks.spawn(calls::relay::serve(
        listeners.relay,
        calls.clone(),
        cancel.clone(),
    ));
    tasks.spawn(calls::ring_timer(calls, cancel.clone()));
    tasks.spawn(accept_loop(
        listeners.plain,
        None,
        ctx.clone(),
        slots.clone(),
        cancel.clone(),
    ));
    if let Some((listener, setup)) = listeners.tls {
        tasks.spawn(accept_loop(
            listener,
            Some(setup),
            ctx.clone(),
            slots.clone(),
            cancel.clone(),
        ));
    }
    tasks.spawn(housekeeping(ctx.clone(), cancel.clone()));
    tasks.spawn(ctx.writer.clone().watch_runtime(cancel.clone()));
    tasks.spawn(presence_batches(
        hub.clone(),
        config.presence_interval,
        cancel.clone(),
    ));

    shutdown.await;
    tracing::info!("shutting down");
    cancel.cancel();
    hub.kick_all("shutdown");
    if tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("some connections did not close in time");
        tasks.abort_all();
    }
    ctx.transfers.finish(Duration::from_secs(10)).await;
    drop(ctx);
    // Every Writer handle is gone once the connections are; the writer drains and stops.
    writer_thread.join().await;
    bus_stop.cancel();
    if let Some(bus) = bus {
        if tokio::time::timeout(Duration::from_secs(5), bus)
            .await
            .is_err()
        {
            tracing::warn!("the cluster bus did not say goodbye in time");
        }
    }
    store.close().await;
    Ok(())
}

/// Sends the batched presence changes every `interval` (§5.3) until shutdown.
async fn presence_batches(hub: Arc<Hub>, interval: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => hub.flush_presence(),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsSetup>,
    ctx: Arc<Ctx>,
    slots: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // The server's end of this connection: an address the client can evidently reach, so
        // calls advertise the relay there.
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(ctx.config.bind, 0));
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            connections.spawn(refuse_busy(stream));
            continue;
        };
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => conn::serve(stream, peer, local, ctx, cancel).await,
                Some(setup) => {
                    match tokio::time::timeout(
                        Duration::from_secs(10),
                        setup.acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => conn::serve(stream, peer, local, ctx, cancel).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    while connections.join_next().await.is_some() {}
}

/// Tells a connection over the cap why it is closed.
async fn refuse_busy(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let mut buf = bytes::BytesMut::new();
    let frame: Frame = natter_proto::encode(&ServerMessage::error(
        None,
        ErrorCode::ServerBusy,
        "the server is at its connection limit; try again later",
    ));
    if FrameCodec::default().encode(frame, &mut buf).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&buf)).await;
    }
}

/// Periodic chores: purge guests whose grace period ran out, expire file transfers, forget idle
/// rate-limit buckets.
async fn housekeeping(ctx: Arc<Ctx>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.config.housekeeping_interval);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        ctx.ip_limits.sweep(Instant::now());
        let cutoff = (ctx.clock)() - ctx.config.guest_grace.as_millis() as i64;
        match ctx.store.stale_guests(cutoff).await {
            Ok(guests) => {
                for (id, name) in guests {
                    if ctx.hub.is_online(id) {
                        continue;
                    }
                    match ctx.delete_user(id, false).await {
                        Ok(()) => tracing::info!(guest = %name, "guest expired"),
                        Err(e) => tracing::warn!(error = %e, "could not purge a guest"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "guest sweep failed"),
        }
        transfer::expire(&ctx.store, &ctx.transfers.blobs, &ctx.hub, (ctx.clock)()).await;
    }
}
