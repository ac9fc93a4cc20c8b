//! The real `parlor` binary, for tests that stop it the way the world
//! does: SIGTERM, SIGINT, SIGKILL.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::databases::TestDatabase;
use crate::helpers::{WsClient, PATIENCE};

/// The real binary on a database of its own, its log going to a file.
pub struct Binary {
    pub child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    /// Starts it on a port of its choosing (the one it logs), so that two
    /// tests can never race for the same port.
    pub fn start(db: &TestDatabase, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_parlor"))
            .args(["--bind", "127.0.0.1:0", "--database-url", &db.url, "--rate-per-sec", "0"])
            .args(extra)
            .env("RUST_LOG", "warn,parlor=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the parlor binary starts");
        let start = Instant::now();
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port =
                text.split("listening on ").nth(1).and_then(|rest| rest.split("127.0.0.1:").nth(1)).and_then(|rest| {
                    rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|digits| digits.parse().ok())
                });
            if let Some(port) = port {
                break port;
            }
            assert!(start.elapsed() < PATIENCE, "the binary never said where it listens:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, port, log, _dir: dir }
    }

    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&format!("ws://127.0.0.1:{}/ws", self.port), None).await
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
    }

    /// Waits up to `within` for the process to end; its status if it did.
    pub async fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if start.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the graceful stop it starts, which must succeed.
    pub fn terminate(mut self) {
        self.signal("TERM");
        assert!(self.child.wait().unwrap().success(), "a graceful stop exits 0");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
