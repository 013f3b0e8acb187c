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
        None => ServeArgs::default(),
    };
    let overrides = Overrides { listen: args.listen, udp_port: args.udp_port };
    let config = Config::load(args.config.as_deref(), &overrides, Config::env())?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.level.clone());
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = parlor::start(&config).await?;
        println!("parlor is serving http://{}/ (media UDP {:?})", server.http_addr, server.media_addrs);
        tokio::select! {
            _ = server.wait() => {}
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; exiting"),
        }
        Ok(())
    })
}
