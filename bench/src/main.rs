//! `parlor-bench SCENARIO`: see `docs/BENCHMARKS.md`.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use parlor_bench::scenario::{self, Opts};
use parlor_bench::{netns, report};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// One room, 12 players, all receive all, 600 kbit/s video + audio each.
    #[value(name = "mafia-12")]
    Mafia12,
    /// As many 8-player rooms at 300 kbit/s as carried with < 1 % loss.
    Rooms,
    /// A stage room of 100: the host at 1 Mbit/s video + audio to all, 16 audience cameras in the
    /// host's view, 3 of them brought on stage and sent back in turn.
    #[value(name = "stage-100")]
    Stage100,
    /// 12 players in a Mafia game switching day/night every ~2 s for 60 s.
    #[value(name = "phase-flip")]
    PhaseFlip,
    /// parlor and Janus side by side on mafia-12, stage-100 (one publisher to 99) or stage-room
    /// (the stage room without stage changes).
    Compare,
    /// The phase-flip game for --minutes (30), sampling the server's RSS every 10 s.
    Soak,
    /// A few seconds with 4 participants at a low rate (what the test suite runs).
    Smoke,
    /// Red light, green light: a host and 99 players moving 10 times a second (signaling only).
    #[value(name = "rlgl-100")]
    Rlgl100,
    /// The drawing game: a drawer sending a stroke every 50 ms to 99 guessers (signaling only).
    #[value(name = "draw-100")]
    Draw100,
}

#[derive(Parser, Debug)]
#[command(name = "parlor-bench", about = "Load generator and benchmark scenarios for parlor (and Janus)")]
struct Cli {
    /// The scenario.
    scenario: Scenario,
    /// For `compare`: which scenario to run on both SFUs (mafia-12, stage-100 or stage-room).
    which: Option<String>,
    /// Drive a running parlor at this URL (http://HOST:PORT) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// With --url: the server's process id, so its CPU and memory can be read.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The parlor binary to start (default: target/release/parlor).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Media workers of the started server (sets PARLOR_MEDIA__WORKERS).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Generator media threads (default: 2, or 1 on a one-core machine).
    #[arg(long)]
    threads: Option<usize>,
    /// Measured window in seconds (per step for `rooms`; the sample interval for `soak`).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds between "everyone receives everything" and the measured window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Players per room (mafia-12, rooms, phase-flip) or participants (stage-100, host included).
    #[arg(long)]
    players: Option<usize>,
    /// `phase-flip`: receive-only participants who join after the game started (Mafia makes them
    /// spectators: they receive every living player by day, nobody by night).
    #[arg(long, default_value_t = 0)]
    audience: usize,
    /// `stage-100`: audience members publishing a camera (all in the host's view, at most 16).
    #[arg(long, default_value_t = 16)]
    cameras: usize,
    /// `stage-100`: those cameras' video bitrate in kbit/s (default 300).
    #[arg(long)]
    camera_kbps: Option<u32>,
    /// Video bitrate in kbit/s (default by scenario; `stage-100`: the host's).
    #[arg(long)]
    video_kbps: Option<u32>,
    /// `mafia-12`: each publisher sends this many simulcast layers (2 or 3; 0: none); the top
    /// layer at --video-kbps, each lower one at a third of the one above (parlor only).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    simulcast: u8,
    /// Run the generator at this niceness (1–19) and the servers it starts at 0, so on a full
    /// machine the server gets the CPU first (needs root). Reported with the results.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    generator_nice: i32,
    /// `rooms`: rooms at the first step.
    #[arg(long, default_value_t = 2)]
    start_rooms: usize,
    /// `rooms`: rooms added at each further step.
    #[arg(long, default_value_t = 2)]
    step_rooms: usize,
    /// `rooms`: stop at this many rooms.
    #[arg(long, default_value_t = 64)]
    max_rooms: usize,
    /// `soak`: how long to play, minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// `soak`: minutes at the start shown but not judged for flatness.
    #[arg(long, default_value_t = 5.0)]
    soak_warmup: f64,
    /// Folder for the JSON results.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// Do not write JSON.
    #[arg(long)]
    no_save: bool,
    /// Suffix for the result file name.
    #[arg(long)]
    tag: Option<String>,
    /// Address the generator's sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Janus configuration folder, with netns.sh (default: the bench crate's janus/).
    #[arg(long, default_value = parlor_bench::janus::CONFIG_DIR)]
    janus_dir: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.generator_nice > 0 {
        parlor_bench::sys::lower_generator_priority(cli.generator_nice)?;
    }
    if cli.scenario == Scenario::Compare && !netns::inside() {
        let code = netns::rerun_inside(&cli.janus_dir.join("netns.sh"))?;
        std::process::exit(code);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let opts = Opts {
        url: cli.url.clone(),
        server_pid: cli.server_pid,
        server_bin: cli.server_bin.clone().unwrap_or_else(parlor_bench::server::default_binary),
        workers: cli.workers.max(1),
        threads: cli.threads.unwrap_or(if cores > 1 { 2 } else { 1 }).max(1),
        duration: cli.duration,
        warmup: cli.warmup.max(0.0),
        out: (!cli.no_save).then(|| cli.out.clone()),
        tag: cli.tag.clone(),
        bind: cli.bind,
        players: cli.players,
        audience: cli.audience,
        cameras: cli.cameras.min(16),
        camera_kbps: cli.camera_kbps,
        video_kbps: cli.video_kbps,
        simulcast: if cli.simulcast == 1 { 0 } else { cli.simulcast },
        start_rooms: cli.start_rooms,
        step_rooms: cli.step_rooms,
        max_rooms: cli.max_rooms,
        janus_dir: cli.janus_dir.clone(),
        verbose: true,
    };
    // Signaling runs on its own small runtime; media runs on the generator's own threads.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        match cli.scenario {
            Scenario::Mafia12 => scenario::mafia12(&opts).await.map(drop),
            Scenario::Rooms => scenario::rooms(&opts).await.map(drop),
            Scenario::Stage100 => parlor_bench::stage::stage100(&opts).await.map(drop),
            Scenario::PhaseFlip => scenario::phase_flip(&opts).await.map(drop),
            Scenario::Rlgl100 => parlor_bench::rlgl::rlgl100(&opts).await.map(drop),
            Scenario::Draw100 => parlor_bench::draw::draw100(&opts).await.map(drop),
            Scenario::Soak => {
                parlor_bench::soak::soak(&opts, cli.minutes.max(0.1), cli.soak_warmup.max(0.0)).await.map(drop)
            }
            Scenario::Compare => {
                let which = cli.which.clone().unwrap_or_else(|| "mafia-12".into());
                if which == "stage-room" {
                    let (p, j) = parlor_bench::stage::compare_stage_room(&opts).await?;
                    return scenario::print_compare(&opts, &which, &p, &j).map(drop);
                }
                scenario::compare(&opts, &which).await.map(drop)
            }
            Scenario::Smoke => {
                let o = scenario::smoke(&opts).await?;
                let rows: Vec<Vec<String>> = o.figures.rows().into_iter().map(|(k, v)| vec![k.to_owned(), v]).collect();
                println!("smoke: {}\n\n{}", o.inputs_text, report::table(&["metric", "value"], &rows));
                Ok(())
            }
        }
    })
}
