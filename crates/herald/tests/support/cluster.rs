//! A real `redis-server` on a free loopback port, started and stopped by PID, and several Herald
//! nodes (in this process) sharing it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TestServer, config};

/// A `redis-server` of the tests' own: no persistence, loopback only.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    /// Serve TLS only, with this certificate (signed by the test CA), instead of plain TCP.
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl RedisServer {
    /// Start one on a free port and wait until it answers PING.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Start one that speaks TLS only (no plain port), with the server certificate of `certs`.
    pub fn start_tls(certs: &super::certs::TestCerts) -> Self {
        Self::start_with(Some(Tls { cert: certs.cert.clone(), key: certs.key.clone(), ca: certs.ca.clone() }))
    }

    fn start_with(tls: Option<Tls>) -> Self {
        let dir = std::env::temp_dir().join(format!("herald-redis-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("create a directory for redis-server");
        for _ in 0..5 {
            let port = free_port();
            let mut server = Self { port, child: None, dir: dir.clone(), tls: tls.clone() };
            if server.launch() {
                return server;
            }
        }
        panic!("cannot start redis-server (scripts/test installs it: apt-get install redis-server)");
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Start redis-server on `self.port`; whether it answers.
    fn launch(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca),
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { panic!("redis-server is not installed (scripts/test installs it)") };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// Whether it answers PING now.
    pub fn ping(&self) -> bool {
        if self.tls.is_some() {
            return self.cli(&["PING"]) == "PONG";
        }
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }

    /// Run a command with redis-cli; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(tls) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(&tls.ca);
        }
        let output = command.args(args).output().expect("redis-cli (installed with redis-server)");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stop it (SIGKILL, by PID): its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.launch() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cannot restart redis-server on port {}", self.port);
    }

    /// Freeze it (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume_quietly();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    fn resume_quietly(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("address").port()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos().into())
}

/// The test configuration, as one node of the cluster at `redis`.
pub fn node_config(redis: &RedisServer) -> herald::Config {
    let mut config = config();
    config.redis_url = Some(redis.url());
    config
}

/// `n` nodes of one cluster, each told about the others before this returns.
pub async fn nodes(redis: &RedisServer, n: usize) -> Vec<TestServer> {
    nodes_with(redis, n, |_| {}).await
}

/// `n` nodes whose configuration `adjust` changes first.
pub async fn nodes_with(redis: &RedisServer, n: usize, adjust: impl Fn(&mut herald::Config)) -> Vec<TestServer> {
    let mut servers = Vec::new();
    for _ in 0..n {
        let mut config = node_config(redis);
        adjust(&mut config);
        servers.push(TestServer::start_with(config).await);
    }
    for server in &servers {
        wait_for_peers(server.addr, n - 1).await;
    }
    servers
}

/// Wait until the node at `addr` hears from `peers` other nodes.
pub async fn wait_for_peers(addr: SocketAddr, peers: usize) {
    let wanted = format!("herald_cluster_peers {peers}\n");
    wait_for_metric(addr, &wanted).await;
}

/// Wait until `/metrics` of the node at `addr` contains `line`.
pub async fn wait_for_metric(addr: SocketAddr, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics(addr).await;
        if text.contains(line) {
            return;
        }
        assert!(Instant::now() < deadline, "node {addr} never showed {line:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node's `/metrics` text.
pub async fn metrics(addr: SocketAddr) -> String {
    let rest = super::RestClient { addr, key: String::new(), secret: String::new(), app_id: String::new() };
    rest.send("GET", "/metrics", String::new()).await.text
}

/// Poll `check` until it returns `Some`, for up to 20 s; panics with `what` otherwise. For what
/// crosses the cluster after the fact (counts, rosters): each node learns of the others' changes a
/// moment later.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Presence `channel_data` for user `id`.
pub fn member(id: &str) -> String {
    serde_json::json!({"user_id": id, "user_info": {"name": format!("user {id}")}}).to_string()
}

/// Make sure everything `from` has sent to the cluster so far has reached the node of `to`: a
/// node's share changes and events leave it in order and arrive in order, so once an event
/// triggered on `from` reaches `to` (subscribed to `channel`), so has everything before it.
pub async fn barrier(from: &TestServer, to: &mut super::WsClient, channel: &str) {
    from.rest().trigger(&[channel], "herald-test-barrier", "{}").await;
    to.recv_until("herald-test-barrier").await;
}

/// Trigger events on `from` until one reaches `listener` (subscribed to `channel` on another node),
/// for up to 20 s: the cluster carries events again.
pub async fn until_events_cross(from: &TestServer, listener: &mut super::WsClient, channel: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        from.rest().trigger(&[channel], "herald-test-crossed", "{}").await;
        if let Some(frame) = listener.recv_within(Duration::from_millis(200)).await
            && frame["event"] == "herald-test-crossed"
        {
            return;
        }
        assert!(Instant::now() < deadline, "events never crossed to the other node again");
    }
}
