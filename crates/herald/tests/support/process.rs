//! The real `herald` binary as a child process of a test, stopped by its PID: for what an
//! in-process server cannot show (SIGKILL, SIGSTOP, SIGHUP).

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `herald serve` with the test app.
pub struct HeraldProcess {
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl HeraldProcess {
    /// Start it with the test app on 127.0.0.1, a free port, with `extra` flags; wait for its address.
    pub fn start(extra: &[&str]) -> Self {
        let mut args = vec!["--app-id", super::APP_ID, "--key", super::KEY, "--secret", super::SECRET];
        args.extend(extra);
        Self::start_with(&args)
    }

    /// Start `herald serve` on 127.0.0.1, a free port, with exactly `args` otherwise.
    pub fn start_with(args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        command.arg("serve");
        Self::spawn(command, args)
    }

    /// [`HeraldProcess::start`], from a shell whose soft open-file limit is `limit`.
    pub fn start_with_soft_file_limit(limit: u64, extra: &[&str]) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -S -n {limit} && exec \"$0\" serve \"$@\""))
            .arg(env!("CARGO_BIN_EXE_herald"));
        let mut args = vec!["--app-id", super::APP_ID, "--key", super::KEY, "--secret", super::SECRET];
        args.extend(extra);
        Self::spawn(command, &args)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(mut command: Command, args: &[&str]) -> Self {
        let mut child = command
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("HERALD_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the herald binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let after = line.split_once("listening on ").map(|(_, rest)| rest);
                if let Some(rest) = after.and_then(|r| r.strip_prefix("http://").or_else(|| r.strip_prefix("https://")))
                {
                    let _ = addr_tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
                if let Ok(mut log) = kept.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).expect("herald logs its address");
        Self { addr: addr.parse().expect("a socket address"), child, log }
    }

    /// Send it a signal (`-HUP`, `-STOP`, `-CONT`...).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    /// Freeze it (SIGSTOP): to others it is as good as cut off by a partition.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Wait until its log holds `text` (up to 20 s).
    pub fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("herald never logged {text:?}; its log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Kill it without letting it say goodbye.
    pub fn kill(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
