//! The `herald` binary: parse flags, set up logging, bind, print what to paste into clients, and run
//! the server until SIGINT or SIGTERM; or ask a running server whether it is up (`herald health`).
//! Errors are printed in plain words, never as a panic.

mod health;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use herald::LogFormat;
use herald::WebhookTarget;
use herald::{AppConfig, Config};

/// A self-hosted real-time messaging server that speaks the Pusher Channels protocol.
#[derive(Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Ask a running server's /up whether it serves: exit 0 if it answers 200, 1 otherwise.
    Health(HealthArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// App id (used in REST paths, /apps/ID/...). Numeric ids work with every SDK.
    #[arg(long, env = "HERALD_APP_ID")]
    app_id: Option<String>,
    /// App key (what pusher-js connects with).
    #[arg(long, env = "HERALD_KEY")]
    key: Option<String>,
    /// App secret (signs REST requests and channel authorizations).
    #[arg(long, env = "HERALD_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Tell the subscribers of the app given by flags their channel's subscription count
    /// (pusher_internal:subscription_count; off by default, as on Pusher).
    #[arg(long, env = "HERALD_SUBSCRIPTION_COUNT")]
    subscription_count: bool,
    /// Webhook endpoint of the app given by flags (http://...); repeat for several.
    #[arg(long = "webhook-url", env = "HERALD_WEBHOOK_URL", value_delimiter = ',')]
    webhook_urls: Vec<String>,
    /// TOML file with more apps and settings.
    #[arg(long, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "HERALD_HOST", value_parser = parse_host)]
    host: Option<IpAddr>,
    /// Port to listen on; 0 picks a free one [default: 6001].
    #[arg(long, env = "HERALD_PORT")]
    port: Option<u16>,
    /// Join the cluster of every node started with this Redis or Valkey: redis://HOST:PORT[/DB],
    /// or rediss:// for TLS.
    #[arg(long, env = "HERALD_REDIS_URL")]
    redis_url: Option<String>,
    /// PEM file of CA certificates to trust for a rediss:// Redis with a private CA (the public
    /// web's roots are trusted anyway).
    #[arg(long, env = "HERALD_REDIS_CA_FILE")]
    redis_ca_file: Option<PathBuf>,
    /// Log lines as text (the default) or one JSON object per line.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Serve GET /metrics on this address only (e.g. 127.0.0.1:9100) instead of the public port.
    #[arg(long, env = "HERALD_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// PEM certificate chain: serve wss:// and https:// only (with --tls-key; re-read on SIGHUP).
    #[arg(long, env = "HERALD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HERALD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve the debug console at /console (it asks for an app's key and secret, or console token).
    #[arg(long, env = "HERALD_CONSOLE")]
    console: bool,
}

/// Without `--url`, `health` asks where `serve` would listen given the same flags and environment.
#[derive(Args)]
struct HealthArgs {
    /// URL to ask, e.g. http://127.0.0.1:6001/up.
    #[arg(long)]
    url: Option<String>,
    /// TOML file `serve` reads: its host, port and certificate give the default URL.
    #[arg(long, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Address the server listens on; a wildcard (0.0.0.0, ::) is asked on loopback [default: 0.0.0.0].
    #[arg(long, env = "HERALD_HOST", value_parser = parse_host)]
    host: Option<IpAddr>,
    /// Port the server listens on [default: 6001].
    #[arg(long, env = "HERALD_PORT")]
    port: Option<u16>,
    /// The server's certificate, when it serves TLS: ask over https.
    #[arg(long, env = "HERALD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

fn parse_host(value: &str) -> Result<IpAddr, String> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    value.parse().map_err(|_| format!("{value:?} is not an IP address (like 0.0.0.0 or 127.0.0.1)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Health(args) => health(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One JSON object per line, for log shippers.
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
}

fn config_from(args: ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 6001, Vec::new()),
    };
    match (args.app_id, args.key, args.secret) {
        (Some(id), Some(key), Some(secret)) => {
            let mut app = AppConfig::new(id, key, secret);
            app.subscription_count = args.subscription_count;
            app.webhooks = args.webhook_urls.into_iter().map(|url| WebhookTarget { url, events: None }).collect();
            if let Some(source) = &mut config.source {
                source.extra_apps.push(app.clone());
            }
            config.apps.push(app);
        }
        (None, None, None) if args.subscription_count => {
            bail!(
                "--subscription-count applies to the app given by --app-id, --key and --secret; in a config file set subscription_count = true in [[apps]]"
            )
        }
        (None, None, None) if !args.webhook_urls.is_empty() => {
            bail!(
                "--webhook-url applies to the app given by --app-id, --key and --secret; in a config file use [[apps.webhooks]]"
            )
        }
        (None, None, None) => {}
        _ => bail!("give all three of --app-id, --key and --secret (or HERALD_APP_ID, HERALD_KEY, HERALD_SECRET)"),
    }
    if let Some(host) = args.host {
        config.host = host;
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(format) = args.log_format {
        config.log_format = format;
    }
    if let Some(address) = args.metrics_addr {
        config.metrics_addr = Some(address);
    }
    if let Some(url) = args.redis_url {
        config.redis_url = Some(url);
    }
    if let Some(path) = args.redis_ca_file {
        config.redis_ca_file = Some(path);
    }
    if args.console {
        config.console = true;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(herald::TlsFiles { cert, key });
    }
    config.validate()?;
    Ok(config)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = config_from(args)?;
    init_logging(config.log_format);
    raise_open_file_limit();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async {
        let address = SocketAddr::new(config.host, config.port);
        let listener = herald::bind(address).with_context(|| format!("cannot listen on {address}"))?;
        let local = listener.local_addr().context("cannot read the listening address")?;
        // Taken over before anything says the server is up: SIGHUP's default would end the process.
        #[cfg(unix)]
        let _hangups = herald::hangups();
        announce(&config, local);
        herald::run(listener, config, herald::signal()).await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Raise the soft open-file limit to the hard one. Every connection is a file, and a login shell's
/// soft limit (often 1,024) would refuse clients long before the machine runs out of anything;
/// the hard limit is what the administrator allowed (systemd's LimitNOFILE, a container's ulimit).
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit; connections are capped by the current one")
        }
    }
}

fn health(args: HealthArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout);
    if let Some(url) = &args.url {
        return health::check(url, timeout);
    }
    let file = match &args.config {
        Some(path) => Some(Config::from_file(path)?),
        None => None,
    };
    let host = args.host.or(file.as_ref().map(|file| file.host)).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let port = args.port.or(file.as_ref().map(|file| file.port)).unwrap_or(6001);
    if port == 0 {
        bail!("port 0 means any free port: give the server's address with --url");
    }
    let tls = args.tls_cert.is_some() || file.is_some_and(|file| file.tls.is_some());
    health::check(&health::local_url(host, port, tls), timeout)
}

/// Log the address and, per app, the client settings to paste. The secret is never logged.
fn announce(config: &Config, local: SocketAddr) {
    let (scheme, tls) = if config.tls.is_some() { ("https", true) } else { ("http", false) };
    tracing::info!("listening on {scheme}://{local} (WebSocket /app/KEY, REST /apps/APP_ID/...)");
    let host = if local.ip().is_unspecified() { "localhost".to_owned() } else { local.ip().to_string() };
    let port = local.port();
    for app in &config.apps {
        tracing::info!(
            "app {}: pusher-js: new Pusher('{}', {{ cluster: 'mt1', wsHost: '{host}', wsPort: {port}, wssPort: {port}, forceTLS: {tls}, enabledTransports: ['ws', 'wss'] }})",
            app.id,
            app.key
        );
        tracing::info!(
            "app {}: Ruby gem: Pusher.url = '{scheme}://{}:YOUR_SECRET@{host}:{port}/apps/{}'",
            app.id,
            app.key,
            app.id
        );
    }
}
