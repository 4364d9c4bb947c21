//! One `malipo serve` process for the tests that run the real binary
//! (`binary.rs`, `crash.rs`, `nodes.rs`): started on a free port, its output
//! collected line by line, stopped by SIGTERM or SIGKILL, and killed if a
//! test ends without stopping it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::command;

/// How long a start may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ServerProcess {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    pub base_url: String,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl ServerProcess {
    /// Starts `malipo serve` with `env` on top of the test environment and
    /// waits for its "malipo listening" log line. Blocks the calling thread
    /// (tests that serve something in-process use a multi-thread runtime).
    pub fn start(directory: &Path, database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut child = command(directory, database_url)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let mut server = ServerProcess {
            child,
            stdout,
            stderr,
            base_url: String::new(),
        };
        let started = Instant::now();
        loop {
            let found = server.stderr.lock().unwrap().iter().find_map(|line| {
                let entry: Value = serde_json::from_str(line).ok()?;
                (entry["message"] == "malipo listening")
                    .then(|| entry["addr"].as_str().unwrap().to_owned())
            });
            if let Some(address) = found {
                server.base_url = format!("http://{address}");
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "malipo exited early ({status}): {:?}",
                    server.stderr_lines()
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "malipo did not start within {START_TIMEOUT:?}: {:?}",
                server.stderr_lines()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The sandbox key a first start prints, looked for until `within` has
    /// passed (printing may trail the listening log line by a moment).
    pub fn printed_key(&self, within: Duration) -> Option<String> {
        let started = Instant::now();
        loop {
            let key = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|line| line.starts_with("sk_test_"))
                .cloned();
            if key.is_some() || started.elapsed() >= within {
                return key;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown; leases stay held until they run out.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL is sent");
        self.child.wait().expect("the killed process is reaped");
    }

    /// SIGTERM, then a clean exit (status 0); returns what it printed.
    pub fn terminate(mut self) -> (Vec<String>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "malipo did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            exit.success(),
            "graceful shutdown exits 0, got {exit}: {:?}",
            self.stderr_lines()
        );
        // The reader threads may trail the exit by a moment.
        std::thread::sleep(Duration::from_millis(100));
        (self.stdout_lines(), self.stderr_lines())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
