//! Process CPU (getrusage), block-layer write bytes (/proc/self/io), peak RSS, disk usage.

use anyhow::{Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills the zeroed struct it is given; RUSAGE_SELF covers every thread
    // of the process, so the engines' background threads are counted too.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        r
    }
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

fn cpu_now() -> Duration {
    let r = rusage();
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Bytes this process caused to be sent to the block layer (`write_bytes` in /proc/self/io).
fn write_bytes_now() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Peak resident set size of the process.
pub fn peak_rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("VmHWM missing")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

#[derive(Debug)]
pub struct Probe {
    wall: Instant,
    cpu: Duration,
    write_bytes: u64,
}

#[derive(Debug)]
pub struct Measured {
    pub wall: Duration,
    pub cpu: Duration,
    pub write_bytes: u64,
}

impl Probe {
    pub fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_now(),
            write_bytes: write_bytes_now(),
        }
    }
    pub fn stop(&self) -> Measured {
        Measured {
            wall: self.wall.elapsed(),
            cpu: cpu_now().saturating_sub(self.cpu),
            write_bytes: write_bytes_now().saturating_sub(self.write_bytes),
        }
    }
}

/// Percentile (nearest rank) of `v`; sorts it.
pub fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Allocated bytes on disk under `dir` (like `du -s --block-size=1`).
pub fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        if m.is_dir() {
            total += dir_size(&e.path())?;
        } else {
            total += m.blocks() * 512;
        }
    }
    Ok(total)
}
