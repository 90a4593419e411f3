//! Node.js processes for the tests: the npm packages of `tests/js` (installed on first use),
//! free ports, and a Node script run as a peer server that is killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `npm ci` in `dir` unless `probe` (a path under it) exists already.
pub fn ensure_node_modules(dir: &Path, probe: &str) {
    if dir.join(probe).exists() {
        return;
    }
    let st = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm is required for the Node tests (Node.js 18+)");
    assert!(st.success(), "npm ci in {} failed", dir.display());
}

/// A port nobody listens on (now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port` (`up`), or nothing does.
pub fn wait_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = TcpStream::connect(("127.0.0.1", port)).is_ok();
        if ok == up {
            return;
        }
        assert!(Instant::now() < deadline, "port {port} never became {up}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Node script serving on a free port (`PORT`, `HOST` in its environment); killed on drop,
/// panics included.
pub struct NodePeer {
    child: Option<Child>,
    script: String,
    /// The port it listens on.
    pub port: u16,
    env: Vec<(String, String)>,
}

impl NodePeer {
    /// Starts `script` (a path from the crate root) with `env`, and waits for its port.
    pub fn start(script: &str, env: &[(&str, &str)]) -> NodePeer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        ensure_node_modules(&root.join("tests/js"), "node_modules/socket.io");
        let mut n = NodePeer {
            child: None,
            script: script.to_string(),
            port: free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        n.start_again();
        n
    }

    /// Starts it again (same port, same environment) after [`Self::stop`].
    pub fn start_again(&mut self) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let child = Command::new("node")
            .arg(&self.script)
            .env("PORT", self.port.to_string())
            .env("HOST", "127.0.0.1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is required for the Node tests");
        self.child = Some(child);
        wait_port(self.port, true);
    }

    /// Kills it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        self.stop();
    }
}
