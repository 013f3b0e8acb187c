//! Linux specifics: process CPU and memory from /proc, UDP socket drop counters, socket
//! buffers, and receiving datagrams with their kernel arrival time (`SO_TIMESTAMPNS`).

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// A process to read from /proc: ours or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// This process (`/proc/self`).
    Me,
    /// Another process.
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::Me => "/proc/self".to_owned(),
            Pid::Other(p) => format!("/proc/{p}"),
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process (all its threads, living and exited), in seconds, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks).
/// The niceness the generator gave itself (`--generator-nice`); servers it starts undo it.
static GENERATOR_NICE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Lower this process's priority to niceness `n` (threads started afterwards inherit it), so
/// the server under test — started at niceness 0 by [`server_command`] — gets the CPU first
/// and the generator, not the server, is what falls behind on a full machine.
pub fn lower_generator_priority(n: i32) -> anyhow::Result<()> {
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("renice")
        .args(["-n", &n.to_string(), "-p", &pid])
        .stdout(std::process::Stdio::null())
        .status()?;
    let now = nice_of("self");
    if !status.success() || now != Some(n) {
        anyhow::bail!("renice to {n} failed (niceness now {now:?})");
    }
    GENERATOR_NICE.store(n, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Niceness of `/proc/<pid>` (field 19 of its stat).
pub fn nice_of(pid: &str) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(16)?.parse().ok()
}

/// A command for a server under test: at niceness 0 even when the generator lowered its own
/// (`nice -n -N`, which needs root as lowering niceness does).
pub fn server_command(program: &std::ffi::OsStr) -> std::process::Command {
    let n = GENERATOR_NICE.load(std::sync::atomic::Ordering::Relaxed);
    if n == 0 {
        return std::process::Command::new(program);
    }
    let mut cmd = std::process::Command::new("nice");
    cmd.arg("-n").arg((-n).to_string()).arg(program);
    cmd
}

pub fn cpu_seconds(pid: Pid) -> Option<f64> {
    let text = std::fs::read_to_string(format!("{}/stat", pid.dir())).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_second())
}

/// Resident set size (`VmRSS`) in KiB.
pub fn rss_kib(pid: Pid) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Anonymous resident memory (`RssAnon`: heap and stacks, not the code paged in from the
/// binary) in KiB: what grows with participants.
pub fn anon_kib(pid: Pid) -> Option<u64> {
    status_kib(pid, "RssAnon:")
}

fn status_kib(pid: Pid, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("{}/status", pid.dir())).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Whole-machine CPU time from the first line of /proc/stat: (busy, total, steal) in ticks.
/// Busy counts everything but idle and iowait; steal (time the hypervisor gave our virtual
/// CPUs to someone else) is part of busy and also reported on its own.
pub fn machine_ticks() -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    let steal = v.get(7).copied().unwrap_or(0);
    Some((total - idle, total, steal))
}

/// The 1-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Online CPUs and the CPU model, from /proc/cpuinfo.
pub fn cpu_info() -> (usize, String) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = text.lines().filter(|l| l.starts_with("processor")).count().max(1);
    let model = text
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    (cores, model)
}

/// One UDP socket as /proc/net/udp{,6} shows it.
#[derive(Debug, Clone)]
pub struct UdpSocketInfo {
    /// Local address.
    pub local: SocketAddr,
    /// Socket inode.
    pub inode: u64,
    /// Datagrams the kernel dropped on this socket (full receive buffer).
    pub drops: u64,
}

/// Every UDP socket in this network namespace.
pub fn udp_sockets() -> Vec<UdpSocketInfo> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/udp", false), ("/proc/net/udp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 13 {
                continue;
            }
            let Some(local) = parse_proc_addr(cols[1], v6) else { continue };
            let inode = cols[9].parse().unwrap_or(0);
            let drops = cols[12].parse().unwrap_or(0);
            out.push(UdpSocketInfo { local, inode, drops });
        }
    }
    out
}

fn parse_proc_addr(s: &str, v6: bool) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = s.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    if !v6 {
        // The kernel prints the address as a host-endian integer.
        let raw = u32::from_str_radix(ip_hex, 16).ok()?;
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(raw.to_le_bytes())), port));
    }
    if ip_hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(&ip_hex[i * 8..i * 8 + 8], 16).ok()?;
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(bytes)), port))
}

/// Inodes of the sockets a process holds (from its fd table).
pub fn socket_inodes(pid: Pid) -> HashSet<u64> {
    let mut out = HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("{}/fd", pid.dir())) {
        for e in dir.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    if let Ok(n) = n.parse() {
                        out.insert(n);
                    }
                }
            }
        }
    }
    out
}

/// Receive-buffer drops summed over the UDP sockets a process holds.
pub fn udp_drops(pid: Pid) -> u64 {
    let inodes = socket_inodes(pid);
    udp_sockets().iter().filter(|s| inodes.contains(&s.inode)).map(|s| s.drops).sum()
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed; fd is a socket we own.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ask for `bytes` of receive and send buffer (beyond rmem_max when we may), and for kernel
/// receive timestamps on every datagram.
pub fn tune_socket(fd: RawFd, bytes: usize) {
    let b = bytes.min(i32::MAX as usize) as libc::c_int;
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, b).is_err() {
        let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, b);
    }
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, b).is_err() {
        let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, b);
    }
    let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1);
}

/// One datagram: length, source, and the kernel's arrival time in µs since the UNIX epoch
/// (None if the socket does not report one).
pub fn recv_timestamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<u64>)> {
    // SAFETY: every pointer handed to recvmsg points into a local that outlives the call
    // (`addr`, `iov` → `buf`, `control`), with its true length; the control messages are only
    // walked with the CMSG_* helpers within `msg_controllen`, and read unaligned.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        let mut control = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut addr as *mut libc::sockaddr_storage as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                stamp = Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        let source = match addr.ss_family as libc::c_int {
            libc::AF_INET => {
                let a = &*(&addr as *const libc::sockaddr_storage as *const libc::sockaddr_in);
                SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                ))
            }
            libc::AF_INET6 => {
                let a = &*(&addr as *const libc::sockaddr_storage as *const libc::sockaddr_in6);
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                ))
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "datagram from an unknown address family")),
        };
        Ok((n as usize, source, stamp))
    }
}

/// Send a signal to a process we started.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        assert!(cpu_seconds(Pid::Me).is_some());
        assert!(rss_kib(Pid::Me).unwrap() > 0);
        let (busy, total, _) = machine_ticks().unwrap();
        assert!(total >= busy && total > 0);
    }

    #[test]
    fn datagrams_arrive_with_kernel_timestamps_and_show_in_proc() {
        use std::os::fd::AsRawFd;
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tune_socket(rx.as_raw_fd(), 1 << 20);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = crate::payload::now_us();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 64];
        let mut got = None;
        for _ in 0..100 {
            match recv_timestamped(rx.as_raw_fd(), &mut buf) {
                Ok(r) => {
                    got = Some(r);
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        let (n, from, stamp) = got.expect("datagram");
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from, tx.local_addr().unwrap());
        let stamp = stamp.expect("SO_TIMESTAMPNS");
        assert!(stamp + 1_000 >= before && stamp <= crate::payload::now_us() + 1_000);
        let local = rx.local_addr().unwrap();
        let inodes = socket_inodes(Pid::Me);
        assert!(udp_sockets().iter().any(|s| s.local == local && inodes.contains(&s.inode)));
    }
}
