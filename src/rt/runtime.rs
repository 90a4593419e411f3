//! The runtime of a shard: io_uring (with the setup flags the idle policy needs), falling back
//! to epoll.
//!
//! Must not: know what runs on it.

use super::idle::IdlePolicy;

/// Which I/O driver the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// io_uring when the kernel supports it (and `MONOIO_FORCE_LEGACY_DRIVER` is unset), else epoll.
    #[default]
    Auto,
    /// epoll (monoio's legacy driver).
    Epoll,
}

/// io_uring setup flags of a shard's ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UringSetup {
    /// What the idle policy needs: `Defer` for [`IdlePolicy::Coalesce`], `Coop` for
    /// [`IdlePolicy::Spin`], none for [`IdlePolicy::Park`].
    #[default]
    Auto,
    /// No flags (completions interrupt the thread with task work).
    Plain,
    /// `COOP_TASKRUN | TASKRUN_FLAG`: a running shard is not interrupted; completions run at
    /// its next entry into the kernel.
    Coop,
    /// `SINGLE_ISSUER | DEFER_TASKRUN`: completions run only when the shard asks for events;
    /// I/O that arrives while the shard does not wait in the ring wakes nobody.
    Defer,
}

impl UringSetup {
    /// Parses `auto`, `plain`, `coop` or `defer`.
    pub fn parse(s: &str) -> Result<UringSetup, String> {
        Ok(match s {
            "auto" => UringSetup::Auto,
            "plain" => UringSetup::Plain,
            "coop" => UringSetup::Coop,
            "defer" => UringSetup::Defer,
            _ => {
                return Err(format!(
                    "unknown io_uring setup {s:?} (auto, plain, coop, defer)"
                ))
            }
        })
    }

    /// The flags to use with `policy`.
    pub fn resolve(self, policy: IdlePolicy) -> UringSetup {
        match (self, policy) {
            (UringSetup::Auto, IdlePolicy::Park) => UringSetup::Plain,
            (UringSetup::Auto, IdlePolicy::Spin { .. }) => UringSetup::Coop,
            (UringSetup::Auto, IdlePolicy::Coalesce { .. }) => UringSetup::Defer,
            (s, _) => s,
        }
    }

    #[cfg(target_os = "linux")]
    fn builder(self) -> io_uring::Builder {
        let mut b = io_uring::IoUring::builder();
        match self {
            UringSetup::Coop => {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            UringSetup::Defer => {
                b.setup_single_issuer().setup_defer_taskrun();
            }
            UringSetup::Auto | UringSetup::Plain => {}
        }
        b
    }
}

/// Runs `main` on this thread in a new runtime: io_uring with `setup` when `driver` allows it
/// and the kernel has it (a ring that cannot be built with these flags falls back to epoll),
/// else epoll. Returns the driver's name, or an error when no runtime could be built.
pub fn block_on<F: std::future::Future<Output = ()>>(
    id: usize,
    driver: Driver,
    setup: UringSetup,
    main: impl FnOnce() -> F,
) -> Result<&'static str, std::io::Error> {
    let use_uring = driver == Driver::Auto && monoio::utils::detect_uring();
    #[cfg(target_os = "linux")]
    if use_uring {
        match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(1024)
            .uring_builder(setup.builder())
            .enable_timer()
            .build()
        {
            Ok(mut rt) => {
                tracing::info!(shard = id, ?setup, "driver: io_uring");
                rt.block_on(main());
                return Ok("io_uring");
            }
            Err(e) => tracing::warn!(
                shard = id,
                ?setup,
                "io_uring runtime failed ({e}); falling back to epoll"
            ),
        }
    }
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()?;
    tracing::info!(shard = id, "driver: epoll");
    rt.block_on(main());
    Ok("epoll")
}
