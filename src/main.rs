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
    /// Exit 0 when the server at ADDR answers `GET /healthz` with 200 (for container health checks).
    Healthcheck {
        /// The server's HTTP address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Healthcheck { addr }) => return healthcheck(addr),
        Some(Command::Replay { file }) => return replay(&file),
        None => ServeArgs::default(),
    };
    let overrides = Overrides { listen: args.listen, udp_port: args.udp_port };
    let config = Config::load(args.config.as_deref(), &overrides, Config::env())?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.level.clone());
    // Logs go to stderr; stdout carries only the one "serving" line that scripts read.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = parlor::start(&config).await?;
        println!("parlor is serving http://{}/ (media UDP {:?})", server.http_addr, server.media_addrs);
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        // Clients are told and sockets closed; whatever has not finished after 4 s is cut off,
        // so the process is gone within 5 s.
        server.shutdown(std::time::Duration::from_secs(4)).await;
        tracing::info!("bye");
        Ok(())
    })
}

/// `parlor replay FILE`.
fn replay(file: &std::path::Path) -> Result<()> {
    use parlor_signaling::gamelog;
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let records = gamelog::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let replay = gamelog::replay(&records).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    for event in &replay.events {
        println!("{}", serde_json::to_string(event)?);
    }
    let result = match replay.winner {
        Some(w) => format!("winner: {}", serde_json::to_value(w)?.as_str().unwrap_or("?")),
        None => "no winner (the game did not end)".to_owned(),
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

/// A plain HTTP/1.0 GET of /healthz: the runtime image needs no curl for its HEALTHCHECK.
fn healthcheck(addr: SocketAddr) -> Result<()> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| anyhow::anyhow!("cannot reach {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.lines().next().unwrap_or_default();
    anyhow::ensure!(status.split_whitespace().nth(1) == Some("200"), "unhealthy: {status}");
    println!("ok");
    Ok(())
}
