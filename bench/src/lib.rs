//! parlor-bench: a load generator for parlor (and, side by side, Janus VideoRoom).
//!
//! Synthetic participants join through the real signaling protocol and real WebRTC (ICE,
//! DTLS-SRTP) using str0m in RTP mode — many per thread, sans-IO, each with its own UDP socket
//! on 127.0.0.1 — publish Opus-shaped audio and VP8 video with valid RFC 7741 descriptors,
//! and count every packet they receive by the mark each payload ends with (publisher, kind,
//! counter, send time). Latency is kernel arrival time (`SO_TIMESTAMPNS`) minus send time, on
//! one clock. The server runs as a separate process, so its CPU (utime + stime from
//! /proc/PID/stat) and memory are its own.
//!
//! See `docs/BENCHMARKS.md` for the scenarios and the latest figures.

pub mod bysend;
pub mod draw;
pub mod fleet;
pub mod hist;
pub mod janus;
pub mod media;
pub mod netns;
pub mod parlor;
pub mod participant;
pub mod payload;
pub mod report;
pub mod rlgl;
pub mod scenario;
pub mod server;
pub(crate) mod signaling;
pub mod soak;
pub mod stage;
pub mod sys;
