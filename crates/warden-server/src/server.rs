//! The decision server: bind, serve HTTP/1.1 with keep-alive, watch the policies, and shut
//! down gracefully (stop accepting, finish in-flight requests, then return).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use warden::{AuditLog, Warden};

use crate::api;
use crate::canned::DenyShaped;
use crate::config::{ServeError, ServerConfig};
use crate::exchange::Shared;
use crate::metrics::Metrics;
use crate::reload::Reloader;

/// A bound decision server, ready to [`run`](DecisionServer::run).
pub struct DecisionServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    reloader: Arc<Reloader>,
    config: ServerConfig,
}

impl std::fmt::Debug for DecisionServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionServer")
            .field("listen", &self.listener.local_addr().ok())
            .field("reloader", &self.reloader)
            .finish_non_exhaustive()
    }
}

impl DecisionServer {
    /// Check the configuration and bind the address; decisions come from `warden`, built by
    /// the caller (the CLI builds it with [`warden::WardenBuilder`], like every other door),
    /// whose policy paths the server watches and reloads.
    pub async fn bind(config: ServerConfig, warden: Arc<Warden>) -> Result<Self, ServeError> {
        config.check()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local = listener.local_addr().map_err(ServeError::Runtime)?;
        let metrics = Arc::new(Metrics::default());
        let reloader = Arc::new(Reloader::new(warden.clone(), metrics.clone()));
        let shared = Arc::new(Shared {
            audit_db: warden.audit().map(|log| log.path().to_path_buf()),
            warden,
            metrics,
            token: config.token.clone(),
            operator_token: config.operator_token.clone(),
            max_body_bytes: config.max_body_bytes,
            max_batch: config.max_batch,
            request_timeout: config.request_timeout,
            local,
            draining: AtomicBool::new(false),
            handshake: config.handshake.clone(),
            feed: crate::feed::Feed::default(),
            sessions: crate::session::Sessions::new(config.session_ttl),
            dashboard: config.dashboard,
            reloader: reloader.clone(),
            verifying: AtomicBool::new(false),
            closing: tokio::sync::watch::channel(false).0,
        });
        Ok(DecisionServer {
            listener,
            shared,
            reloader,
            config,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Runtime)
    }

    /// The reloader, to trigger a reload from outside (the CLI wires SIGHUP to it).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// The counters behind `GET /metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Serve until `shutdown` completes; then stop accepting, let in-flight requests finish
    /// (up to the drain timeout) and return. Policy files are polled meanwhile.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let DecisionServer {
            listener,
            shared,
            reloader,
            config,
        } = self;
        let watcher = tokio::spawn(reloader.watch(config.poll_interval));
        let app = api::router(shared.clone());
        let mut http = http1::Builder::new();
        // Slow clients: headers must arrive within the request timeout (the body has its own
        // limit in the handlers), so a trickling client cannot hold a connection forever.
        http.timer(TokioTimer::new())
            .header_read_timeout(config.request_timeout)
            .keep_alive(true);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    let io = TokioIo::new(DenyShaped::new(stream));
                    let connection = graceful.watch(http.serve_connection(io, service));
                    tokio::spawn(async move {
                        // A client that hangs up mid-request is its own problem, not ours.
                        let _ = connection.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        shared.draining.store(true, Ordering::Relaxed);
        shared.closing.send_replace(true);
        drop(listener);
        watcher.abort();
        if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "some requests did not finish within {} s; closing them",
                config.drain_timeout.as_secs_f64()
            );
        }
        flush_audit(&shared).await;
        Ok(())
    }

    /// Serve on a new multi-threaded runtime until SIGTERM or SIGINT, reloading on SIGHUP.
    /// `bound` is called once with the bound address, before the first request is accepted.
    pub fn run_until_signalled(
        config: ServerConfig,
        warden: Arc<Warden>,
        bound: impl FnOnce(SocketAddr),
    ) -> Result<(), ServeError> {
        // Before the runtime: a zero thread count is an error to report, not a panic.
        config.check()?;
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = config.worker_threads {
            runtime.worker_threads(n);
        }
        let runtime = runtime
            .enable_all()
            // Policy engines recurse (Rego rule chains, nested CEL, Cedar expressions): they
            // are bounded at load, and the threads that run them get room beyond those bounds
            // (address space only; pages are touched as they are used).
            .thread_stack_size(DECISION_STACK)
            .thread_name("warden-serve")
            .build()
            .map_err(ServeError::Runtime)?;
        runtime.block_on(async move {
            let server = DecisionServer::bind(config, warden).await?;
            let signals = Signals::install()?;
            bound(server.local_addr()?);
            let reloader = server.reloader();
            let stop = signals.serve(reloader);
            server.run(stop).await
        })
    }
}

/// Stack for the threads that decide (tokio's default is 2 MiB).
const DECISION_STACK: usize = 16 << 20;

/// Make every audit record accepted so far durable before the process exits.
async fn flush_audit(shared: &Arc<Shared>) {
    let shared = shared.clone();
    let flushed =
        tokio::task::spawn_blocking(move || shared.warden.audit().map(AuditLog::flush)).await;
    match flushed {
        Ok(None) | Ok(Some(Ok(()))) => {}
        Ok(Some(Err(e))) => tracing::error!("flushing the audit log failed: {e}"),
        Err(e) => tracing::error!("flushing the audit log failed: {e}"),
    }
}

/// The Unix signals the server listens to.
struct Signals {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            hangup: signal(SignalKind::hangup()).map_err(ServeError::Runtime)?,
            terminate: signal(SignalKind::terminate()).map_err(ServeError::Runtime)?,
            interrupt: signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?,
        })
    }

    /// Reload on every SIGHUP; complete on the first SIGTERM or SIGINT.
    async fn serve(mut self, reloader: Arc<Reloader>) {
        loop {
            tokio::select! {
                _ = self.hangup.recv() => {
                    // Off the signal loop, so a slow compile never delays a SIGTERM.
                    let reloader = reloader.clone();
                    tokio::spawn(async move { let _ = reloader.reload("SIGHUP").await; });
                }
                _ = self.terminate.recv() => {
                    tracing::info!("SIGTERM: finishing in-flight requests");
                    return;
                }
                _ = self.interrupt.recv() => {
                    tracing::info!("SIGINT: finishing in-flight requests");
                    return;
                }
            }
        }
    }
}
