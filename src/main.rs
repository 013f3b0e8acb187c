//! `parlor`: serve video calls for party games.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use parlor::config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "parlor", version, about = "A self-hostable SFU for the video calls of online party games")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web client, signaling and media (the default with no arguments).
    Serve(ServeArgs),
    /// Re-run a game from its log (see games.log_dir): print its events and check them against
    /// the recording (exit 1 on any difference).
    Replay {
        /// A game log (JSON lines).
        file: PathBuf,
    },
    /// Print a host token for room CODE (signed with auth.secret): its holder's `join` with
    /// `token` takes the room's host powers (see docs/API.md).
    Token {
        /// The room code.
        room: String,
        /// Lifetime in seconds (default: auth.token_ttl_seconds).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<f64>,
        /// A TOML file layered over the built-in defaults (see config/default.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the ports to open in the firewall and check that every announced media address
    /// answers a STUN binding request over UDP and ICE-TCP (exit 1 when one does not). Reads the
    /// configuration like `serve`; run it with the server's own settings.
    Check(CheckArgs),
    /// Exit 0 when the server answers `GET /healthz` with 200 (for container health checks).
    /// Without --addr it reads the configuration like `serve` (file, then PARLOR_* variables)
    /// and knocks at server.listen, over TLS when TLS is configured.
    Healthcheck {
        /// The server's HTTP address (default: server.listen from the configuration).
        #[arg(long, value_name = "ADDR")]
        addr: Option<SocketAddr>,
        /// Speak TLS to --addr (implied by the configuration when --addr is not given).
        #[arg(long, requires = "addr")]
        tls: bool,
        /// A TOML file layered over the built-in defaults (see config/default.toml).
        #[arg(long, value_name = "FILE", conflicts_with = "addr")]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// A TOML file layered over the built-in defaults (see config/default.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP address to listen on, e.g. 0.0.0.0:8080 (server.listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// First media UDP port (media.udp_port).
    #[arg(long, value_name = "PORT")]
    udp_port: Option<u16>,
    /// First ICE-TCP port (media.tcp_port).
    #[arg(long, value_name = "PORT")]
    tcp_port: Option<u16>,
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    timeout_ms: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Healthcheck { addr, tls, config }) => return healthcheck(addr, tls, config.as_deref()),
        Some(Command::Replay { file }) => return replay(&file),
        Some(Command::Check(args)) => return check(args),
        Some(Command::Token { room, ttl, config }) => return token(&room, ttl, config.as_deref()),
        None => ServeArgs::default(),
    };
    let overrides = Overrides { listen: args.listen, udp_port: args.udp_port };
    let (mut config, stray) = load_config(args.config.as_deref(), &overrides)?;
    if let Some(port) = args.tcp_port {
        config.set_tcp_port(port)?;
    }
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.level.clone());
    // Logs go to stderr; stdout carries only the one "serving" line that scripts read.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    for name in stray {
        tracing::warn!(
            "ignoring {name}: configuration variables are PARLOR_<SECTION>__<KEY> (see config/default.toml)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = parlor::start(&config).await?;
        let scheme = if config.tls.enabled() { "https" } else { "http" };
        println!(
            "parlor is serving {scheme}://{}/ (media UDP {:?}, ICE-TCP {:?})",
            server.http_addr, server.media_addrs, server.media_tcp_addrs
        );
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); break }
                _ = terminate.recv() => {
                    // A cluster node drains first: its rooms run on, new ones go to other nodes.
                    if let Some(limit) = server.drain_limit() {
                        tracing::info!(
                            "SIGTERM: draining (rooms run on until empty, at most {} s; SIGTERM or SIGINT again stops now)",
                            limit.as_secs_f64()
                        );
                        let cut = async {
                            tokio::select! {
                                _ = tokio::signal::ctrl_c() => {}
                                _ = terminate.recv() => {}
                            }
                        };
                        let drained = server.drain(cut).await;
                        tracing::info!("drained ({drained}): shutting down");
                    } else {
                        tracing::info!("SIGTERM: shutting down");
                    }
                    break
                }
                // SIGHUP: a renewed certificate (certbot's deploy hook) is served from now on.
                _ = hangup.recv() => match server.reload_tls() {
                    Ok(()) => tracing::info!("SIGHUP: TLS files reloaded (if any)"),
                    Err(e) => tracing::warn!("SIGHUP: keeping the old certificate: {e:#}"),
                },
            }
        }
        // Clients are told and sockets closed; whatever has not finished after 4 s is cut off,
        // so the process is gone within 5 s.
        server.shutdown(std::time::Duration::from_secs(4)).await;
        tracing::info!("bye");
        Ok(())
    })
}

/// `parlor token CODE`: a host token signed with the configured secret.
fn token(room: &str, ttl: Option<f64>, config: Option<&std::path::Path>) -> Result<()> {
    let (config, _) = load_config(config, &Overrides::default())?;
    anyhow::ensure!(
        !config.auth.secret.is_empty(),
        "auth.secret is not set (config file or PARLOR_AUTH__SECRET): the server would sign with a random secret \
         and refuse this token"
    );
    anyhow::ensure!(
        parlor_signaling::ids::is_valid_code(room),
        "room codes are 1-32 characters of A-Z, a-z, 0-9 and -"
    );
    let ttl = ttl.unwrap_or(config.auth.token_ttl_seconds);
    anyhow::ensure!(ttl.is_finite() && ttl >= 1.0, "--ttl must be at least 1 second");
    let auth = parlor::auth::Auth::new(&config.auth);
    let token = auth.mint(room, std::time::Duration::from_secs_f64(ttl))?;
    println!("{}", token.token);
    Ok(())
}

/// `parlor check`: exit 1 when an announced address does not answer.
fn check(args: CheckArgs) -> Result<()> {
    let a = args.serve;
    let overrides = Overrides { listen: a.listen, udp_port: a.udp_port };
    let (mut config, _) = load_config(a.config.as_deref(), &overrides)?;
    if let Some(port) = a.tcp_port {
        config.set_tcp_port(port)?;
    }
    let timeout = std::time::Duration::from_millis(args.timeout_ms);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ok = runtime.block_on(parlor::check::run(&config, timeout, &mut std::io::stdout()))?;
    if !ok {
        // The report above says what failed; an error trace would only repeat it.
        std::process::exit(1);
    }
    Ok(())
}

/// `parlor replay FILE`.
fn replay(file: &std::path::Path) -> Result<()> {
    use parlor_signaling::gamelog;
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let records = gamelog::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let registry = parlor_signaling::Registry::builtin();
    let replay = gamelog::replay(&registry, &records).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    for event in &replay.events {
        println!("{}", serde_json::to_string(event)?);
    }
    let result = match &replay.game_over {
        Some(over) => format!("{} game over: {}", replay.kind, outcome(over)),
        None => format!("{} game: no result (the game did not end)", replay.kind),
    };
    match replay.mismatch {
        None => {
            println!("{result}; {} events; matches the recording", replay.events.len());
            Ok(())
        }
        Some((i, recorded, replayed)) => {
            println!("{result}; {} events", replay.events.len());
            anyhow::bail!(
                "event {i} differs from the recording:\n  recorded: {}\n  replayed: {}",
                serde_json::to_string(&recorded)?,
                serde_json::to_string(&replayed)?
            )
        }
    }
}

/// A `game_over` message in a line: its plain fields as `name: value` (a winner, a ranking),
/// leaving out maps such as every role.
fn outcome(over: &serde_json::Value) -> String {
    let Some(fields) = over.as_object() else { return over.to_string() };
    let shown: Vec<String> = fields
        .iter()
        .filter(|(k, v)| k.as_str() != "type" && !v.is_object())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect();
    if shown.is_empty() {
        "ended".to_owned()
    } else {
        shown.join(", ")
    }
}

/// The configuration from the built-in defaults, `file`, the `PARLOR_…` variables and the
/// flags, and the `PARLOR_…` variables left out (for a warning); a variable one underscore
/// short of a section is refused here too.
fn load_config(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<(Config, Vec<String>)> {
    let stray = Config::stray_env()?;
    Ok((Config::load(file, overrides, Config::env())?, stray))
}

/// `GET /healthz` at --addr, or where the configuration says the server listens.
fn healthcheck(addr: Option<SocketAddr>, tls: bool, config: Option<&std::path::Path>) -> Result<()> {
    let (addr, tls) = match addr {
        Some(addr) => (addr, tls),
        None => parlor::health::target(&load_config(config, &Overrides::default())?.0),
    };
    parlor::health::probe(addr, tls, std::time::Duration::from_secs(3))?;
    println!("ok");
    Ok(())
}
