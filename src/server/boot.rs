//! The boot of each shard: its runtime (io_uring, falling back to epoll), then each layer's
//! per-shard state in order (runtime core, Socket.IO namespaces, engine endpoints), then the
//! accept loop and the inbox until shutdown.
//!
//! Must not: hold state of its own after the boot: each layer owns its per-shard state.

use super::{Config, EndpointCfg};
use crate::engine::raw::RawApp;
use crate::engine::{self, EndpointsBuilder};
use crate::rt::{self, Job, ShardSet};
use std::sync::Arc;
use std::time::Duration;

/// Installs the engine and Socket.IO layers of this shard (the runtime core is installed).
pub(crate) fn install_layers(cfg: &Config) {
    let mut eps = EndpointsBuilder::default();
    if !cfg.pages.is_empty() {
        eps.pages(cfg.pages.clone());
    }
    for e in &cfg.endpoints {
        match e {
            EndpointCfg::SocketIo(engine, sio) => {
                let app = crate::sio::install(sio);
                eps.add(engine.clone(), &cfg.limits, app);
            }
            EndpointCfg::Raw(engine, factory) => {
                eps.add(engine.clone(), &cfg.limits, RawApp(factory()));
            }
        }
    }
    eps.install();
}

/// The body of a shard's thread.
pub(crate) fn run_shard(
    id: usize,
    cfg: Arc<Config>,
    peers: Arc<ShardSet>,
    listener: std::net::TcpListener,
    rx: crossbeam_channel::Receiver<Job>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let (driver, setup) = (cfg.driver, cfg.uring_setup.resolve(cfg.idle));
    if matches!(cfg.idle, rt::IdlePolicy::Coalesce { .. }) {
        rt::idle::tighten_timer_slack();
    }
    let main = move || shard_main(id, cfg, peers, listener, rx, ready);
    if let Err(e) = rt::runtime::block_on(id, driver, setup, main) {
        tracing::error!(shard = id, "cannot build a runtime: {e}");
    }
}

async fn shard_main(
    id: usize,
    cfg: Arc<Config>,
    peers: Arc<ShardSet>,
    listener: std::net::TcpListener,
    rx: crossbeam_channel::Receiver<Job>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let sh = rt::Shard::install(id, peers);
    install_layers(&cfg);
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(shard = id, "listener: {e}");
            let _ = ready.send(());
            return;
        }
    };
    let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let inbox = monoio::spawn(sh.run(rx));
    monoio::spawn(rt::idle::run(cfg.idle));
    let _ = ready.send(());
    monoio::select! {
        _ = engine::accept_loop(listener) => {}
        _ = inbox => {}
    }
    // an accept may still be in flight: shutting the socket down completes it, so the
    // listener really closes when dropped below
    rt::sys::shutdown_fd(listen_fd);
    // let close frames and final polling answers go out
    monoio::time::sleep(Duration::from_millis(100)).await;
}

/// The job that stops a shard: every session closes ("server shutting down"), then the inbox
/// task ends, and with it the shard.
pub(crate) fn shutdown_job() -> Job {
    Box::new(|| {
        monoio::spawn(async {
            engine::shutdown().await;
            rt::shard().stop();
        });
    })
}
