//! End-to-end tests: the real `herald` binary against the clients Herald's users run (pusher-js 3.x,
//! 7.6 and 8.x in headless Chromium and under Node, Laravel Echo, the Node, Python, Ruby and PHP
//! server SDKs).
//!
//! Each `#[test]` is one scenario: it starts its own `herald serve` on 127.0.0.1 port 0, reads the
//! port from the log, and runs one client script from `tests/e2e/` with the server's address and
//! credentials in its environment (`HERALD_HOST`, `HERALD_PORT`, `HERALD_APP_ID`, `HERALD_KEY`,
//! `HERALD_SECRET`). Every scenario also runs against a cluster (`cluster::`): two nodes sharing a
//! `redis-server` started for it, `HERALD_PORT` being the first node (for WebSocket clients) and
//! `HERALD_REST_PORT` the second (for the server SDKs). A scenario with webhooks also gets
//! `HERALD_WEBHOOK_PORT`: a loopback port that the server posts webhooks to
//! (`http://127.0.0.1:PORT/pusher/webhooks`), already listening, handed to the script as its stdin
//! (so that nothing else can take the port between here and the script). The script does the
//! talking and the checking; it exits 0 on success and
//! otherwise says what it was waiting for. On failure the test prints the script's output and the
//! server's log. Every process started here is stopped by its PID.
//!
//! The clients are installed by `scripts/test` (npm packages, a Python venv, Chromium, Ruby, PHP).
//! Three things live outside the repository and are found through the environment:
//! `HERALD_RUBY_CLIENTS` (the directory holding `pusher-ruby`, which runs the vendored Ruby gem),
//! `HERALD_PHP_CLIENTS` (the directory holding `pusher-php`, which runs a script with the official PHP
//! SDK loadable, no Composer) and `HERALD_SEED_DEMO` (the Rails demo whose page the browser scenarios
//! rebuild); by default `shared/clients/ruby`, `shared/clients/php` and `shared/seed-demo` next to the
//! repository.
//!
//! Adding a scenario: write the client script under `tests/e2e/` (`.mjs` for Node, `.py` for
//! Python), then a line in `scenarios!`. Ruby and PHP scripts run as children of a Node
//! script (`runRuby`, `runPhp` in `lib/harness.mjs`), which holds the WebSocket side of the scenario.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod support;

const APP_ID: &str = "1";
const KEY: &str = "herald-e2e-key";
const SECRET: &str = "herald-e2e-secret";

/// How long one client script may run; it enforces this itself so that it can say what it was
/// waiting for. A backstop only (every wait in a script has its own timeout naming what never
/// happened), so it is generous: with every core busy, starting Node with playwright-core, or a
/// Python or Ruby SDK client, takes tens of seconds on its own.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// Past the script's own timeout, how long before it is stopped from here.
const KILL_GRACE: Duration = Duration::from_secs(15);
/// How long the server may take to log its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Each scenario runs twice, from the same definition: against one node (`single::`), and against a
/// cluster of two nodes sharing a real `redis-server` (`cluster::`), the WebSocket clients on node A
/// and the server SDKs on node B. A few also run over TLS (`tls::`).
macro_rules! scenarios {
    ($($body:tt)*) => {
        scenarios_in!(single, super::Mode::Single, { $($body)* });
        scenarios_in!(cluster, super::Mode::Cluster, { $($body)* });
    };
}

macro_rules! scenarios_in {
    ($module:ident, $mode:expr, { $($name:ident: $script:literal, [$($arg:literal),*], $hooks:expr;)* }) => {
        mod $module {
            #[allow(unused_imports)]
            use super::{COUNTS, NO_WEBHOOKS, WEBHOOKS};
            $(#[test]
            fn $name() {
                super::run_scenario($script, &[$($arg),*], $hooks, $mode);
            })*
        }
    };
}

/// What a scenario needs of the server besides the defaults.
#[derive(Clone, Copy)]
struct Needs {
    /// Webhooks posted to a port the script listens on (`HERALD_WEBHOOK_PORT`).
    webhooks: bool,
    /// `--subscription-count` (off by default, as on Pusher).
    subscription_count: bool,
}

const NO_WEBHOOKS: Needs = Needs { webhooks: false, subscription_count: false };
const WEBHOOKS: Needs = Needs { webhooks: true, subscription_count: false };
const COUNTS: Needs = Needs { webhooks: false, subscription_count: true };

scenarios! {
    seed_demo_with_pusher_js_3_and_ruby_gem_0_15_2: "browser/seed_demo.mjs", ["3", "0.15.2"], NO_WEBHOOKS;
    seed_demo_with_pusher_js_8_and_ruby_gem_latest: "browser/seed_demo.mjs", ["8", "latest"], NO_WEBHOOKS;
    pusher_js_on_node_receives_node_sdk_triggers_and_batches: "node/sdk_events.mjs", ["node"], NO_WEBHOOKS;
    pusher_js_on_node_receives_python_sdk_triggers_and_batches: "node/sdk_events.mjs", ["python"], NO_WEBHOOKS;
    private_and_presence_channels_with_pusher_js_8: "node/private_presence.mjs", ["8"], NO_WEBHOOKS;
    private_and_presence_channels_with_pusher_js_7: "node/private_presence.mjs", ["7"], NO_WEBHOOKS;
    client_events_and_their_rate_limit_with_pusher_js_8: "node/client_events.mjs", ["8"], NO_WEBHOOKS;
    client_events_and_their_rate_limit_with_pusher_js_7: "node/client_events.mjs", ["7"], NO_WEBHOOKS;
    encrypted_cache_and_subscription_count_with_pusher_js_8: "node/encrypted_cache.mjs", ["8"], COUNTS;
    encrypted_cache_and_subscription_count_with_pusher_js_7: "node/encrypted_cache.mjs", ["7"], COUNTS;
    signin_user_events_watchlist_and_terminate_with_pusher_js_8: "node/users.mjs", ["8"], NO_WEBHOOKS;
    signin_user_events_watchlist_and_terminate_with_pusher_js_7: "node/users.mjs", ["7"], NO_WEBHOOKS;
    webhooks_validated_by_node_and_python_sdks_with_pusher_js_8: "node/webhooks.mjs", ["8"], WEBHOOKS;
    laravel_echo_with_pusher_js_8: "node/laravel_echo.mjs", [], NO_WEBHOOKS;
    ruby_gem_read_api_and_tokens_with_pusher_js_8: "node/read_api.mjs", ["ruby", "8"], NO_WEBHOOKS;
    ruby_gem_read_api_and_tokens_with_pusher_js_7: "node/read_api.mjs", ["ruby", "7"], NO_WEBHOOKS;
    python_sdk_read_api_tokens_and_user_endpoints_with_pusher_js_8: "node/read_api.mjs", ["python", "8"], NO_WEBHOOKS;
    python_sdk_read_api_tokens_and_user_endpoints_with_pusher_js_7: "node/read_api.mjs", ["python", "7"], NO_WEBHOOKS;
    php_sdk_triggers_tokens_encryption_and_read_api_with_pusher_js_8: "node/php_sdk.mjs", ["8"], NO_WEBHOOKS;
    php_sdk_user_events_webhooks_and_api_errors_with_pusher_js_8: "node/php_sdk_users.mjs", ["8"], WEBHOOKS;
    // docs/migrating.md: each of its snippets, as users would paste them (tests/docs_snippets.rs).
    migrating_guide_snippets_every_sdk_to_pusher_js_3_7_8_and_echo: "node/migrating.mjs", [], NO_WEBHOOKS;
    php_sdk_sees_413_for_a_body_over_the_limit: "node/php_sdk_body_limit.mjs", [], NO_WEBHOOKS;
}

// pusher-js with forceTLS and wssPort, the Node SDK with useTLS, the Python SDK with ssl=True and
// the Ruby gem with an https URL, against a server with a certificate made for the scenario.
scenarios_in!(tls, super::Mode::Tls, {
    pusher_js_over_wss_receives_node_sdk_triggers_over_https: "node/sdk_events.mjs", ["node"], NO_WEBHOOKS;
    pusher_js_over_wss_receives_python_sdk_triggers_over_https: "node/sdk_events.mjs", ["python"], NO_WEBHOOKS;
    ruby_gem_over_https_read_api_and_tokens_with_pusher_js_8: "node/read_api.mjs", ["ruby", "8"], NO_WEBHOOKS;
    laravel_echo_over_wss: "node/laravel_echo.mjs", [], NO_WEBHOOKS;
});

// `scripts/demo` as a newcomer runs it, two tabs of the seed chat in Chromium. It starts its own Herald
// from this test's binary (`HERALD_BIN`), so it runs once, not per mode, and the server started for
// it here goes unused. `HERALD_UPDATE_SCREENSHOTS=1` saves `docs/demo-chat.png`.
scenarios_in!(demo, super::Mode::Single, {
    seed_chat_in_two_tabs_with_pusher_js_8: "browser/demo_chat.mjs", ["8"], NO_WEBHOOKS;
    seed_chat_in_two_tabs_with_pusher_js_3: "browser/demo_chat.mjs", ["3"], NO_WEBHOOKS;
});

// The debug console (`--console`) in Chromium, next to pusher-js and the Node SDK on one node: the
// console shows what the node it is served by sees. `HERALD_UPDATE_SCREENSHOTS=1` saves
// `docs/console-login.png` and `docs/console.png`.
scenarios_in!(console, super::Mode::Console, {
    console_shows_pusher_js_and_node_sdk_and_sends_events_with_pusher_js_8: "browser/console.mjs", ["8"], NO_WEBHOOKS;
});

/// One node, a cluster of two sharing a `redis-server`, one node serving TLS only, or one node with
/// the debug console on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single,
    Cluster,
    Tls,
    Console,
}

/// Run one client script against fresh servers and panic with everything needed to debug it if the
/// script fails or hangs.
fn run_scenario(script: &str, args: &[&str], needs: Needs, mode: Mode) {
    let paths = Paths::checked();
    // By extension: `.mjs` runs under Node with `tests/e2e/node_modules`, `.py` under the venv's Python.
    let program = match Path::new(script).extension().and_then(|ext| ext.to_str()) {
        Some("mjs") => PathBuf::from("node"),
        Some("py") => paths.e2e.join(".venv/bin/python"),
        _ => panic!("no interpreter for e2e script {script}; use .mjs or .py"),
    };
    // Listening from here on and handed over as is: a port closed here and bound again by the script
    // could be taken in between by any other process binding port 0 (another scenario's server).
    let webhook_port = needs.webhooks.then(WebhookPort::reserve);
    let mut server_args: Vec<String> = webhook_port.iter().flat_map(WebhookPort::server_args).collect();
    if needs.subscription_count {
        server_args.push("--subscription-count".into());
    }
    let redis = (mode == Mode::Cluster).then(support::cluster::RedisServer::start);
    if let Some(redis) = &redis {
        server_args.extend(["--redis-url".into(), redis.url()]);
    }
    let certs = (mode == Mode::Tls).then(|| support::certs::TestCerts::new("e2e"));
    if let Some(certs) = &certs {
        server_args.extend(["--tls-cert".into(), certs.cert.display().to_string()]);
        server_args.extend(["--tls-key".into(), certs.key.display().to_string()]);
    }
    if mode == Mode::Console {
        server_args.push("--console".into());
    }
    let mut servers = vec![Herald::start(&server_args)];
    if mode == Mode::Cluster {
        servers.push(Herald::start(&server_args));
        for server in &mut servers {
            server.wait_for_peers(1);
        }
    }
    // WebSocket clients on the first node; REST (the server SDKs) on the last.
    let (ws_port, rest_port) = (servers[0].port, servers[servers.len() - 1].port);
    let mut command = Command::new(&program);
    match webhook_port {
        Some(listener) => {
            command.env("HERALD_WEBHOOK_PORT", listener.port().to_string()).stdin(listener.into_stdio());
        }
        None => {
            command.stdin(Stdio::null());
        }
    }
    command
        .arg(paths.e2e.join(script))
        .args(args)
        .current_dir(&paths.e2e)
        .env("HERALD_HOST", "127.0.0.1")
        .env("HERALD_PORT", ws_port.to_string())
        .env("HERALD_REST_PORT", rest_port.to_string())
        .env("HERALD_APP_ID", APP_ID)
        .env("HERALD_KEY", KEY)
        .env("HERALD_SECRET", SECRET)
        .env("HERALD_BIN", env!("CARGO_BIN_EXE_herald"))
        .env("HERALD_RUBY_CLIENTS", &paths.ruby_clients)
        .env("HERALD_PHP_CLIENTS", &paths.php_clients)
        .env("HERALD_SEED_DEMO", &paths.seed_demo)
        .env("HERALD_E2E_TIMEOUT_MS", SCENARIO_TIMEOUT.as_millis().to_string());
    if let Some(certs) = &certs {
        // Each client trusts the scenario's CA the way its users would configure it.
        command
            .env("HERALD_TLS", "1")
            .env("NODE_EXTRA_CA_CERTS", &certs.ca)
            .env("REQUESTS_CA_BUNDLE", &certs.ca)
            .env("SSL_CERT_FILE", &certs.ca);
    }
    let shown = format!("{} {script} {}", program.display(), args.join(" "));

    let started = Instant::now();
    let run = Run::spawn(command, &shown);
    let outcome = run.finish(SCENARIO_TIMEOUT + KILL_GRACE);
    if outcome.passed() {
        return;
    }
    let logs: Vec<String> = servers
        .iter_mut()
        .enumerate()
        .map(|(i, server)| format!("---- herald node {i} ({}) log ----\n{}", server.state(), server.log()))
        .collect();
    panic!(
        "e2e scenario `{shown}` {} after {:.1}s\n\
         ---- its stdout ----\n{}\n---- its stderr ----\n{}\n{}",
        outcome.describe(),
        started.elapsed().as_secs_f64(),
        outcome.stdout,
        outcome.stderr,
        logs.join("\n"),
    );
}

/// Where the tests find their clients, checked before any process starts.
struct Paths {
    /// `tests/e2e`: the scripts, `node_modules` and `.venv`.
    e2e: PathBuf,
    /// Holds `pusher-ruby`.
    ruby_clients: PathBuf,
    /// Holds `pusher-php`.
    php_clients: PathBuf,
    /// The Rails demo's files.
    seed_demo: PathBuf,
}

impl Paths {
    /// Panics with one line per missing piece, each saying how to get it.
    fn checked() -> Self {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let beside_repo = manifest.join("../../..");
        let paths = Paths {
            e2e: manifest.join("tests/e2e"),
            ruby_clients: outside_repo("HERALD_RUBY_CLIENTS", &beside_repo.join("shared/clients/ruby")),
            php_clients: outside_repo("HERALD_PHP_CLIENTS", &beside_repo.join("shared/clients/php")),
            seed_demo: outside_repo("HERALD_SEED_DEMO", &beside_repo.join("shared/seed-demo")),
        };
        let chromium = std::env::var_os("HERALD_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);

        let mut missing = Vec::new();
        let mut need = |ok: bool, what: String| {
            if !ok {
                missing.push(what);
            }
        };
        need(
            paths.e2e.join("node_modules/.package-lock.json").is_file(),
            format!("npm packages ({}/node_modules)", paths.e2e.display()),
        );
        need(paths.e2e.join(".venv/bin/python").is_file(), format!("the Python venv ({}/.venv)", paths.e2e.display()));
        need(succeeds(Command::new("node").arg("--version")), "node on PATH".into());
        need(chromium.is_file(), format!("Chromium ({})", chromium.display()));
        need(
            succeeds(Command::new("ruby").args(["-e", "require 'httpclient'; require 'multi_json'"])),
            "ruby with httpclient and multi_json (Debian: ruby ruby-httpclient ruby-multi-json)".into(),
        );
        need(
            paths.ruby_clients.join("pusher-ruby").is_file(),
            format!(
                "the Ruby pusher gem launcher {} (set HERALD_RUBY_CLIENTS)",
                paths.ruby_clients.join("pusher-ruby").display()
            ),
        );
        need(
            succeeds(Command::new("php").args(["-r", PHP_SDK_NEEDS])),
            "php with curl, Guzzle and PSR-3 (Debian: php-cli php-curl php-guzzlehttp-guzzle php-psr-log)".into(),
        );
        need(
            paths.php_clients.join("pusher-php").is_file(),
            format!("the PHP SDK launcher {} (set HERALD_PHP_CLIENTS)", paths.php_clients.join("pusher-php").display()),
        );
        need(
            paths.seed_demo.join("app/assets/javascripts/application.js").is_file(),
            format!("the seed demo at {} (set HERALD_SEED_DEMO)", paths.seed_demo.display()),
        );
        assert!(
            missing.is_empty(),
            "e2e clients are not installed; run scripts/test first (it installs them). Missing:\n  {}",
            missing.join("\n  ")
        );
        paths
    }
}

/// What the PHP SDK needs from Debian's packages: curl, Guzzle 7 and PSR-3, found on PHP's include path.
const PHP_SDK_NEEDS: &str = r"require 'GuzzleHttp/autoload.php'; require 'Psr/Log/autoload.php';
    exit(function_exists('curl_init') && class_exists('GuzzleHttp\Client')
        && interface_exists('Psr\Log\LoggerInterface') ? 0 : 1);";

/// `var` from the environment if set, else `default`; absolute, because the scripts run elsewhere.
fn outside_repo(var: &str, default: &Path) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| default.to_path_buf(), PathBuf::from);
    path.canonicalize().unwrap_or(path)
}

fn succeeds(command: &mut Command) -> bool {
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A loopback port for a script's webhook receiver, listening from the start; the script serves
/// HTTP on the very socket ([`WebhookPort::into_stdio`]).
struct WebhookPort(std::net::TcpListener);

impl WebhookPort {
    fn reserve() -> Self {
        Self(std::net::TcpListener::bind("127.0.0.1:0").expect("reserve a loopback port for webhooks"))
    }

    fn port(&self) -> u16 {
        self.0.local_addr().expect("the reserved webhook port's address").port()
    }

    /// `--webhook-url` for the server, pointing at the port.
    fn server_args(&self) -> [String; 2] {
        ["--webhook-url".into(), format!("http://127.0.0.1:{}/pusher/webhooks", self.port())]
    }

    /// The listening socket as a child's stdin; connections made to it meanwhile wait in its backlog.
    fn into_stdio(self) -> Stdio {
        Stdio::from(OwnedFd::from(self.0))
    }
}

/// A running `herald serve` and everything it has logged so far.
struct Herald {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Herald {
    /// Start the binary on 127.0.0.1 port 0, with `extra` flags, and wait for the line that says
    /// which port it got.
    fn start(extra: &[String]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        command
            .args(["serve", "--app-id", APP_ID, "--key", KEY, "--secret", SECRET, "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            // Flags win over these, but a config file or webhook URLs from the caller's environment
            // would not.
            .env_remove("HERALD_CONFIG")
            .env_remove("HERALD_WEBHOOK_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info,herald=debug");
        }
        let mut child = command.spawn().expect("start the herald binary");

        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("herald stderr is piped");
        let stderr_log = Arc::clone(&log);
        thread::spawn(move || {
            each_line(stderr, |line| {
                if let Some(port) = listening_port(line) {
                    let _ = port_tx.send(port);
                }
                append(&stderr_log, line);
            });
        });
        collect(child.stdout.take().expect("herald stdout is piped"), Arc::clone(&log));

        let mut herald = Herald { child, port: 0, log };
        match port_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(port) => herald.port = port,
            Err(_) => panic!(
                "herald ({}) did not log `listening on http://127.0.0.1:PORT` within {}s; its log:\n{}",
                herald.state(),
                STARTUP_TIMEOUT.as_secs(),
                herald.log()
            ),
        }
        herald
    }

    fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Wait until this node of a cluster hears from `peers` others (its `/metrics` says so).
    fn wait_for_peers(&mut self, peers: usize) {
        let wanted = format!("herald_cluster_peers {peers}\n");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if http_get(self.port, "/metrics").contains(&wanted) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("herald ({}) never heard from {peers} other node(s); its log:\n{}", self.state(), self.log());
    }

    /// "running", or how it exited: a server that died mid-scenario explains most failures.
    fn state(&mut self) -> String {
        match self.child.try_wait() {
            Ok(None) => format!("pid {}, still running", self.child.id()),
            Ok(Some(status)) => format!("pid {}, exited: {status}", self.child.id()),
            Err(err) => format!("pid {}, state unknown: {err}", self.child.id()),
        }
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of `GET path` on 127.0.0.1:`port` (empty on any failure).
fn http_get(port: u16, path: &str) -> String {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_string(&mut response);
    }
    response
}

/// The port in herald's `listening on http://127.0.0.1:PORT ...` line.
fn listening_port(line: &str) -> Option<u16> {
    let rest = line.split_once("listening on ")?.1;
    let rest = rest.strip_prefix("http://").or_else(|| rest.strip_prefix("https://"))?;
    let address = rest.split_whitespace().next()?;
    address.rsplit_once(':')?.1.parse().ok()
}

fn append(buffer: &Mutex<String>, line: &str) {
    if let Ok(mut buffer) = buffer.lock() {
        buffer.push_str(line);
        buffer.push('\n');
    }
}

/// Call `f` with each line of `stream` until it closes. Bytes that are not UTF-8 are replaced rather
/// than ending the loop: a reader that stopped early would leave the pipe full and the writer
/// blocked on its next log line.
fn each_line(stream: impl Read, mut f: impl FnMut(&str)) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                f(text.trim_end_matches(['\n', '\r']));
            }
        }
    }
}

/// Copy `stream` into `buffer` on a thread until it closes; the returned receiver fires then.
fn collect(stream: impl Read + Send + 'static, buffer: Arc<Mutex<String>>) -> mpsc::Receiver<()> {
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        each_line(stream, |line| append(&buffer, line));
        let _ = done_tx.send(());
    });
    done_rx
}

/// A client script running with its output collected.
struct Run {
    child: Child,
    stdout: (Arc<Mutex<String>>, mpsc::Receiver<()>),
    stderr: (Arc<Mutex<String>>, mpsc::Receiver<()>),
}

/// How a client script ended, and what it printed.
struct Outcome {
    status: Option<ExitStatus>,
    timed_out: Option<Duration>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Start `command` (its stdin is the caller's choice) with stdout and stderr collected.
    fn spawn(mut command: Command, shown: &str) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|err| panic!("cannot start `{shown}`: {err}"));
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let stdout = collect(child.stdout.take().expect("stdout is piped"), Arc::clone(&out));
        let stderr = collect(child.stderr.take().expect("stderr is piped"), Arc::clone(&err));
        Run { child, stdout: (out, stdout), stderr: (err, stderr) }
    }

    /// Wait for the script to exit; past `limit`, stop it (SIGTERM so that it can close its
    /// browser, then SIGKILL).
    fn finish(mut self, limit: Duration) -> Outcome {
        let deadline = Instant::now() + limit;
        let mut timed_out = None;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    timed_out = Some(limit);
                    break self.stop();
                }
                Err(_) => break self.stop(),
            }
        };
        // The pipes close when the script exits, unless something it started still holds them.
        let take = |(buffer, done): &(Arc<Mutex<String>>, mpsc::Receiver<()>)| {
            let _ = done.recv_timeout(Duration::from_secs(5));
            buffer.lock().map(|text| text.clone()).unwrap_or_default()
        };
        Outcome { status, timed_out, stdout: take(&self.stdout), stderr: take(&self.stderr) }
    }

    fn stop(&mut self) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        let grace = Instant::now() + Duration::from_secs(5);
        while Instant::now() < grace {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Outcome {
    fn passed(&self) -> bool {
        self.timed_out.is_none() && self.status.is_some_and(|status| status.success())
    }

    fn describe(&self) -> String {
        match (self.timed_out, self.status) {
            (Some(limit), _) => format!("did not finish within {}s and was stopped", limit.as_secs()),
            (None, Some(status)) => format!("failed ({status})"),
            (None, None) => "failed (exit status unknown)".into(),
        }
    }
}
