//! The server under test: either a `herald` process this tool starts (pinned to one CPU with
//! `taskset` when available), or one already running. CPU time and RSS come from `/proc`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Credentials of the app every scenario uses.
pub const APP_ID: &str = "1";
/// App key.
pub const KEY: &str = "bench-key";
/// App secret.
pub const SECRET: &str = "bench-secret";

/// Where the server listens and which process it is.
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// Its process id, if known (for CPU and RSS).
    pub pid: Option<u32>,
    child: Option<Child>,
}

/// CPU time and resident memory of a process at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    /// User + system CPU time, in microseconds.
    pub cpu_us: u64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
    /// The highest resident set size the process ever had (VmHWM), in KiB.
    pub peak_rss_kib: u64,
}

impl Target {
    /// Start `binary` on 127.0.0.1 with a free port, pinned to `cpu` if given.
    pub async fn start(binary: &Path, cpu: Option<usize>) -> anyhow::Result<Self> {
        Self::start_with(binary, cpu, &[]).await
    }

    /// [`Self::start`] with more `herald serve` flags (`--redis-url ...`).
    pub async fn start_with(binary: &Path, cpu: Option<usize>, extra: &[String]) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!("{} does not exist; build it with `cargo build --release -p herald`", binary.display());
        }
        let args =
            ["serve", "--app-id", APP_ID, "--key", KEY, "--secret", SECRET, "--host", "127.0.0.1", "--port", "0"];
        let mut command = pinned(binary, cpu);
        command.args(args).args(extra);
        command
            .env("RUST_LOG", "info,herald::access=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    return addr.parse::<SocketAddr>().context("unreadable listening address");
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .context("the server did not start within 20 s")??;
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { addr, pid, child: Some(child) })
    }

    /// A server that is already running.
    pub fn existing(addr: SocketAddr, pid: Option<u32>) -> Self {
        Self { addr, pid, child: None }
    }

    /// The server's CPU time and RSS now, if its pid is known.
    pub fn stats(&self) -> Option<ProcStats> {
        self.pid.and_then(proc_stats)
    }

    /// Stop the server if this tool started it (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = self.pid {
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

/// A command running `program`, under `taskset -c cpu` when a CPU is given and taskset exists.
fn pinned(program: &Path, cpu: Option<usize>) -> Command {
    match cpu.filter(|_| which("taskset")) {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu.to_string()).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A `redis-server` of the benchmark's own: loopback, a free port, no persistence, pinned like the
/// servers. Its CPU time is part of what a cluster costs.
pub struct Redis {
    /// Its port.
    pub port: u16,
    /// Its process id.
    pub pid: Option<u32>,
    child: Child,
}

impl Redis {
    /// Start one and wait until it accepts connections.
    pub async fn start(cpu: Option<usize>) -> anyhow::Result<Self> {
        if !which("redis-server") {
            bail!("redis-server is not installed (apt-get install redis-server)");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = pinned(Path::new("redis-server"), cpu);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().context("cannot start redis-server")?;
        let pid = child.id();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(Self { port, pid, child });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("redis-server did not start on port {port}")
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its CPU time and RSS now.
    pub fn stats(&self) -> Option<ProcStats> {
        self.pid.and_then(proc_stats)
    }

    /// Stop it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Read `/proc/{pid}/stat` (utime + stime) and `/proc/{pid}/status` (VmRSS, VmHWM).
pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3 (state); utime and stime are
    // fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        status.lines().find_map(|line| line.strip_prefix(field)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let rss_kib = kib("VmRSS:")?;
    let peak_rss_kib = kib("VmHWM:").unwrap_or(rss_kib);
    Some(ProcStats { cpu_us: ticks * 1_000_000 / clock_ticks_per_second(), rss_kib, peak_rss_kib })
}

fn clock_ticks_per_second() -> u64 {
    // USER_HZ is 100 on every Linux architecture this runs on; `getconf` confirms when available.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// The soft open-file limit of this process.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
