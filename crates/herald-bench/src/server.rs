//! The server under test: a process this tool starts for each scenario (Herald, or another
//! Pusher-protocol server: soketi, sockudo or the floor server, pinned to one CPU with `taskset`
//! when available), or one already running. CPU time and RSS come from `/proc`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The app every scenario uses: id, key and secret.
#[derive(Clone, Debug)]
pub struct App {
    /// App id, as in `/apps/{id}/events`.
    pub id: String,
    /// App key, as in `/app/{key}`.
    pub key: String,
    /// App secret, for signatures.
    pub secret: String,
}

static APP: RwLock<Option<Arc<App>>> = RwLock::new(None);

/// Set the app's credentials, before the scenarios against one server run (a comparison sets
/// each server's in turn).
pub fn set_app(app: App) {
    *APP.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(app));
}

/// The app's credentials (Herald's bench app unless [`set_app`] said otherwise).
pub fn app() -> Arc<App> {
    let current = APP.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    current.unwrap_or_else(|| Arc::new(Kind::Herald.default_app()))
}

/// Which server a scenario runs against when this tool starts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Kind {
    /// Herald's release binary (`--server`).
    Herald,
    /// soketi, installed with `../shared/peers/soketi/setup.sh` (`--soketi-dir`).
    Soketi,
    /// sockudo, installed with `../shared/peers/sockudo/setup.sh` (`--sockudo-dir`).
    Sockudo,
    /// pushbench's `floor-server`, a minimal broadcast server used as the physical limit
    /// (`--floor-server`): no signature checks, nothing but frames.
    Floor,
}

impl Kind {
    /// The name used in tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Herald => "herald",
            Self::Soketi => "soketi",
            Self::Sockudo => "sockudo",
            Self::Floor => "floor",
        }
    }

    /// The credentials the server is started with: the peers' start scripts create
    /// `app-1`/`app-key`/`app-secret`; the floor server accepts any.
    pub fn default_app(self) -> App {
        let (id, key, secret) = match self {
            Self::Herald | Self::Floor => ("1", "bench-key", "bench-secret"),
            Self::Soketi | Self::Sockudo => ("app-1", "app-key", "app-secret"),
        };
        App { id: id.to_owned(), key: key.to_owned(), secret: secret.to_owned() }
    }
}

/// How to start a server of some kind: the program (Herald's or the floor server's binary) or
/// the directory a peer was installed into (holding its `start.sh` and `stop.sh`).
#[derive(Clone, Debug)]
pub struct Launcher {
    /// The kind of server.
    pub kind: Kind,
    /// The binary (Herald, floor) or the install directory (soketi, sockudo).
    pub path: PathBuf,
    /// The CPU to pin it to.
    pub cpu: Option<usize>,
}

impl Launcher {
    /// Start a fresh server and wait until it accepts connections.
    pub async fn start(&self) -> anyhow::Result<Target> {
        match self.kind {
            Kind::Herald => Target::start(&self.path, self.cpu).await,
            Kind::Floor => Target::start_floor(&self.path, self.cpu).await,
            Kind::Soketi | Kind::Sockudo => Target::start_peer(self.kind, &self.path, self.cpu).await,
        }
    }

    /// What is missing to start this server, if anything, and how to get it.
    pub fn missing(&self) -> Option<String> {
        let (needed, how) = match self.kind {
            Kind::Herald => (self.path.clone(), "cargo build --release -p herald"),
            Kind::Floor => {
                (self.path.clone(), "cargo build --release in pushbench's directory (scripts/compare does it)")
            }
            Kind::Soketi => (
                self.path.join("node_modules/@soketi/soketi"),
                "scripts/compare --install-peers (../shared/peers/soketi/setup.sh DIR)",
            ),
            Kind::Sockudo => (
                self.path.join("bin/sockudo"),
                "scripts/compare --install-peers (../shared/peers/sockudo/setup.sh DIR SRC)",
            ),
        };
        (!needed.exists()).then(|| {
            format!("{} is not there: {} is not installed; install it with {how}", needed.display(), self.kind.name())
        })
    }
}

/// Where the server listens and which process it is.
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// Its process id, if known (for CPU and RSS).
    pub pid: Option<u32>,
    /// What it is.
    pub kind: Kind,
    child: Option<Child>,
    /// A peer started by its `start.sh`: its install directory and port, for its `stop.sh`.
    script: Option<(PathBuf, u16)>,
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
        let app = app();
        let args = [
            "serve",
            "--app-id",
            &app.id,
            "--key",
            &app.key,
            "--secret",
            &app.secret,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ];
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
        Ok(Self { addr, pid, kind: Kind::Herald, child: Some(child), script: None })
    }

    /// Start pushbench's `floor-server` on a free port.
    async fn start_floor(binary: &Path, cpu: Option<usize>) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!("{} does not exist; build pushbench with `cargo build --release` in its directory", binary.display());
        }
        let port = free_port()?;
        let mut command = pinned(binary, cpu);
        command.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        command.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut target = Self { addr, pid, kind: Kind::Floor, child: Some(child), script: None };
        if let Err(error) = wait_for_port(addr, Duration::from_secs(20)).await {
            target.stop_now().await;
            return Err(error.context("the floor server did not start"));
        }
        Ok(target)
    }

    /// Start soketi or sockudo with `DIR/start.sh local PORT` (pinned: the server inherits the
    /// script's CPU affinity) and read its pid from the file the script writes.
    async fn start_peer(kind: Kind, dir: &Path, cpu: Option<usize>) -> anyhow::Result<Self> {
        let start = dir.join("start.sh");
        if !start.exists() {
            bail!(
                "{} is not installed in {} (no start.sh); run scripts/compare --install-peers",
                kind.name(),
                dir.display()
            );
        }
        let port = free_port()?;
        let mut command = pinned(&start, cpu);
        command.args(["local", &port.to_string()]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .with_context(|| format!("{} did not start within 60 s", kind.name()))??;
        let pid_file = dir.join(format!("{}-{port}.pid", kind.name()));
        let pid = std::fs::read_to_string(&pid_file).ok().and_then(|text| text.trim().parse::<u32>().ok());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut target = Self { addr, pid, kind, child: None, script: Some((dir.to_owned(), port)) };
        if !output.status.success() || pid.is_none() {
            target.stop_now().await;
            bail!(
                "{} did not start ({}): {}{}",
                kind.name(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(target)
    }

    /// A server that is already running.
    pub fn existing(addr: SocketAddr, pid: Option<u32>, kind: Kind) -> Self {
        Self { addr, pid, kind, child: None, script: None }
    }

    /// The server's CPU time and RSS now, if its pid is known.
    pub fn stats(&self) -> Option<ProcStats> {
        self.pid.and_then(proc_stats)
    }

    /// Stop the server if this tool started it (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some((dir, port)) = self.script.take() {
            // The peer's stop.sh signals the pid in its pid file; wait for that pid to be gone.
            let _ = Command::new(dir.join("stop.sh")).arg(port.to_string()).stdout(Stdio::null()).status().await;
            if let Some(pid) = self.pid {
                for _ in 0..150 {
                    if !alive(pid) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status().await;
            }
            return;
        }
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = self.pid {
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for Target {
    /// A peer started by a script is not a child process: stop it even when a scenario failed
    /// before [`Target::stop`] (children are killed on drop by tokio).
    fn drop(&mut self) {
        if let Some((dir, port)) = self.script.take() {
            let _ =
                std::process::Command::new(dir.join("stop.sh")).arg(port.to_string()).stdout(Stdio::null()).status();
        }
    }
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// A loopback port nobody listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Wait until `addr` accepts a TCP connection.
async fn wait_for_port(addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("nothing accepts connections on {addr} after {} s", limit.as_secs())
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
    // USER_HZ is 100 on every Linux architecture this runs on; `getconf` confirms when available
    // (asked once: a process started in a measured phase would count as load generator CPU).
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// CPU time the whole machine spent busy so far (every CPU, every process, kernel threads and
/// interrupts: all of `/proc/stat` but idle and iowait), in microseconds.
pub fn machine_busy_us() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    Some(busy * 1_000_000 / clock_ticks_per_second())
}

/// The soft open-file limit of this process.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
