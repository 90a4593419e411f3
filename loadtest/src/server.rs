//! The server under test: start/stop ringio or the Node peer, or point at an external one; read
//! its CPU time and RSS from /proc.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (loadtest/ is a member of it), fixed at compile time.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ringio,
    Node,
    Socketioxide,
    Floor,
    External,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ringio => "ringio",
            Kind::Node => "node-socket.io",
            Kind::Socketioxide => "socketioxide",
            Kind::Floor => "floor",
            Kind::External => "external",
        }
    }
}

/// A running server under test.
pub struct Server {
    pub kind: Kind,
    pub label: String,
    pub addr: SocketAddr,
    pub host_header: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    pub log: Option<PathBuf>,
    /// how to start the same server again on the same port (`restart`)
    respawn: Option<Respawn>,
}

/// The command line of a server the harness started, kept to start it again.
#[derive(Clone)]
struct Respawn {
    name: &'static str,
    prog: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    /// `--pin`: the CPUs the process starts on
    cpus: Option<Vec<usize>>,
}

impl Respawn {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.prog);
        cmd.args(&self.args);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        if let Some(c) = &self.cpus {
            crate::pin::on_exec(&mut cmd, c);
        }
        cmd
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn log_path(name: &str) -> PathBuf {
    let dir = workspace_root().join("target").join("loadtest-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}-{}.log", std::process::id()))
}

fn spawn_logged(mut cmd: Command, name: &str) -> Result<(Child, PathBuf), String> {
    let log = log_path(name);
    let f = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let f2 = f.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
    // SAFETY: prctl in the child before exec; async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok((child, log))
}

fn wait_ready(addr: SocketAddr, child: &mut Child, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "server exited ({st}) before listening; log:\n{tail}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "server did not listen on {addr} within 20 s (log: {})",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `ringio` binary next to this executable (target/release/ringio for a release build).
pub fn ringio_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    dir.join("ringio")
}

/// The socketioxide peer's binary (its own target/ under loadtest/peers/socketioxide).
pub fn socketioxide_binary() -> PathBuf {
    workspace_root().join("loadtest/peers/socketioxide/target/release/socketioxide-peer")
}

/// Whether the socketioxide peer can run here: built already, or cargo can build it.
pub fn socketioxide_available() -> bool {
    socketioxide_binary().exists()
        || workspace_root()
            .join("loadtest/peers/socketioxide/Cargo.toml")
            .exists()
}

/// The socketioxide version the peer's Cargo.lock resolved ("0.18" without a lock file).
fn socketioxide_version(dir: &Path) -> String {
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "name = \"socketioxide\"" {
            if let Some(v) = lines
                .next()
                .and_then(|v| v.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_string();
            }
        }
    }
    "0.18".into()
}

/// Runs `npm ci` (`npm install` without a package-lock.json) in `dir` when its node_modules
/// lacks the package `marker`.
pub fn npm_install(dir: &Path, marker: &str) -> Result<(), String> {
    if dir.join("node_modules").join(marker).exists() {
        return Ok(());
    }
    let sub = if dir.join("package-lock.json").exists() {
        "ci"
    } else {
        "install"
    };
    eprintln!("loadtest: running `npm {sub}` in {}", dir.display());
    let st = Command::new("npm")
        .args([sub, "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run npm (is Node.js installed?): {e}"))?;
    if !st.success() {
        return Err(format!("npm {sub} failed in {}", dir.display()));
    }
    Ok(())
}

/// Makes sure the ringio binary exists: builds it with cargo (release) when missing and
/// `build` is true.
pub fn ensure_ringio(build: bool) -> Result<PathBuf, String> {
    let bin = ringio_binary();
    if bin.exists() {
        return Ok(bin);
    }
    let root = workspace_root();
    let how = format!(
        "build it with: (cd {} && cargo build --release --bin ringio)",
        root.display()
    );
    if !build {
        return Err(format!("{} not found; {how}", bin.display()));
    }
    eprintln!(
        "loadtest: {} not found; running `cargo build --release --bin ringio` in {}",
        bin.display(),
        root.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--release", "--bin", "ringio"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}; {how}"))?;
    if !st.success() || !bin.exists() {
        return Err(format!(
            "cargo build failed or produced no {}; {how}",
            bin.display()
        ));
    }
    Ok(bin)
}

impl Server {
    /// Starts `ringio serve` on a free port (on `cpus` when set: `--pin`).
    pub fn start_ringio(
        shards: usize,
        build: bool,
        cpus: Option<&[usize]>,
    ) -> Result<Server, String> {
        let bin = ensure_ringio(build)?;
        let port = free_port().map_err(|e| e.to_string())?;
        let rs = Respawn {
            name: "ringio",
            prog: bin,
            args: [
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--shards",
                &shards.to_string(),
            ]
            .map(String::from)
            .to_vec(),
            envs: vec![(
                "RUST_LOG".into(),
                std::env::var("RINGIO_LOG").unwrap_or("warn".into()),
            )],
            cwd: None,
            cpus: cpus.map(<[usize]>::to_vec),
        };
        let (mut child, log) = spawn_logged(rs.command(), "ringio")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_ready(addr, &mut child, &log)?;
        Ok(Server {
            kind: Kind::Ringio,
            label: format!("ringio ({shards} shards)"),
            addr,
            host_header: format!("127.0.0.1:{port}"),
            pid: Some(child.id()),
            child: Some(child),
            log: Some(log),
            respawn: Some(rs),
        })
    }

    /// Starts the floor server (this executable's hidden `floor-server`: raw TCP on monoio).
    pub fn start_floor(shards: usize, cpus: Option<&[usize]>) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.args([
            "floor-server",
            "--port",
            &port.to_string(),
            "--shards",
            &shards.to_string(),
        ]);
        if let Some(c) = cpus {
            crate::pin::on_exec(&mut cmd, c);
        }
        let (mut child, log) = spawn_logged(cmd, "floor")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_ready(addr, &mut child, &log)?;
        Ok(Server {
            kind: Kind::Floor,
            label: format!("floor (raw TCP, monoio, {shards} shards)"),
            addr,
            host_header: format!("127.0.0.1:{port}"),
            pid: Some(child.id()),
            child: Some(child),
            log: Some(log),
            respawn: None,
        })
    }

    /// Starts the Node socket.io peer (loadtest/peers/node), running `npm ci` first when its
    /// node_modules is missing.
    pub fn start_node(cpus: Option<&[usize]>) -> Result<Server, String> {
        let dir = workspace_root().join("loadtest").join("peers").join("node");
        npm_install(&dir, "socket.io")?;
        let port = free_port().map_err(|e| e.to_string())?;
        let rs = Respawn {
            name: "node",
            prog: "node".into(),
            args: vec!["server.js".into()],
            envs: vec![
                ("PORT".into(), port.to_string()),
                ("HOST".into(), "127.0.0.1".into()),
            ],
            cwd: Some(dir.clone()),
            cpus: cpus.map(<[usize]>::to_vec),
        };
        let (mut child, log) = spawn_logged(rs.command(), "node")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_ready(addr, &mut child, &log)?;
        let version = Command::new("node")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Ok(Server {
            kind: Kind::Node,
            label: format!("node {version} socket.io 4.8.4"),
            addr,
            host_header: format!("127.0.0.1:{port}"),
            pid: Some(child.id()),
            child: Some(child),
            log: Some(log),
            respawn: Some(rs),
        })
    }

    /// Starts the socketioxide 0.18 peer (loadtest/peers/socketioxide, a separate cargo project),
    /// building it first (`cargo build --release --manifest-path ...`) when its binary is missing
    /// and `build` is true.
    pub fn start_socketioxide(build: bool, cpus: Option<&[usize]>) -> Result<Server, String> {
        let dir = workspace_root()
            .join("loadtest")
            .join("peers")
            .join("socketioxide");
        let bin = socketioxide_binary();
        let manifest = dir.join("Cargo.toml");
        let how = format!(
            "build it with: cargo build --release --manifest-path {}",
            manifest.display()
        );
        if !bin.exists() {
            if !build {
                return Err(format!("{} not found; {how}", bin.display()));
            }
            eprintln!(
                "loadtest: {} not found; {how} (first build takes minutes)",
                bin.display()
            );
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .arg("build")
                .arg("--release")
                .arg("--manifest-path")
                .arg(&manifest)
                .status()
                .map_err(|e| format!("cannot run cargo: {e}; {how}"))?;
            if !st.success() || !bin.exists() {
                return Err(format!(
                    "cargo build failed or produced no {}; {how}",
                    bin.display()
                ));
            }
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&bin);
        cmd.env("PORT", port.to_string()).env("HOST", "127.0.0.1");
        if let Some(c) = cpus {
            crate::pin::on_exec(&mut cmd, c);
        }
        let (mut child, log) = spawn_logged(cmd, "socketioxide")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_ready(addr, &mut child, &log)?;
        Ok(Server {
            kind: Kind::Socketioxide,
            label: format!("socketioxide {} (tokio, axum)", socketioxide_version(&dir)),
            addr,
            host_header: format!("127.0.0.1:{port}"),
            pid: Some(child.id()),
            child: Some(child),
            log: Some(log),
            respawn: None,
        })
    }

    /// An external server at `url` (http://host:port); `pid` to read its CPU and RSS.
    pub fn external(url: &str, pid: Option<u32>) -> Result<Server, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .unwrap_or(url);
        let hostport = rest.split('/').next().unwrap_or(rest);
        let hostport = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {hostport}: {e}"))?
            .find(|a| a.is_ipv4())
            .ok_or_else(|| format!("no IPv4 address for {hostport}"))?;
        Ok(Server {
            kind: Kind::External,
            label: format!("external {url}"),
            addr,
            host_header: hostport,
            pid,
            child: None,
            log: None,
            respawn: None,
        })
    }

    /// Starts the server again, same command and port, after `stop` (ringio and node only);
    /// returns once it listens. The new process's log goes to a new `-restart` file.
    pub fn restart(&mut self) -> Result<(), String> {
        let rs = self
            .respawn
            .clone()
            .ok_or_else(|| format!("{} cannot be restarted by the harness", self.label))?;
        self.stop();
        let (mut child, log) = spawn_logged(rs.command(), &format!("{}-restart", rs.name))?;
        wait_ready(self.addr, &mut child, &log)?;
        self.pid = Some(child.id());
        self.child = Some(child);
        self.log = Some(log);
        Ok(())
    }

    /// Stops a server this harness started (SIGTERM, then SIGKILL after 3 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child process by its pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => return,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                }
            }
        }
    }

    /// A snapshot of the server's CPU time and RSS (None without a pid).
    pub fn sample(&self) -> Option<ProcSample> {
        self.pid.and_then(ProcSample::of)
    }
}

/// CPU time and RSS of a process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// on-CPU time in ns (sum of the threads' schedstat; utime+stime from /proc/<pid>/stat
    /// where schedstat is unavailable)
    pub cpu_ns: u64,
    pub rss_kb: u64,
}

/// USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times.
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn stat_cpu_ns(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after "pid (comm) ": field 3 is state = f[0]; utime = field 14 = f[11], stime = f[12]
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 1_000_000_000 / clk_tck())
}

fn schedstat_cpu_ns(pid: u32) -> Option<u64> {
    let mut sum = 0u64;
    let mut any = false;
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
            if let Some(v) = s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            {
                sum += v;
                any = true;
            }
        }
    }
    any.then_some(sum)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl ProcSample {
    pub fn of(pid: u32) -> Option<ProcSample> {
        let stat = stat_cpu_ns(pid)?;
        Some(ProcSample {
            cpu_ns: schedstat_cpu_ns(pid).unwrap_or(stat),
            rss_kb: rss_kb(pid)?,
        })
    }
}

/// This process's CPU time (all threads, user+system), in ns.
pub fn self_cpu_ns() -> u64 {
    // SAFETY: getrusage into a zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Machine-wide CPU jiffies (busy, total) from /proc/stat.
pub fn machine_cpu() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}
