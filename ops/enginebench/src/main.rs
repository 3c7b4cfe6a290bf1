//! Embedded storage engine comparison on Cistern's historian workload.
//!
//! Usage: `enginebench <engine> [--dir /tmp/...]`
//!        `enginebench <engine> crash [--dir /tmp/...] [--kills N]`
//! engine: redb, redb-timefirst, redb-timefirst-2m, redb-room, fjall, sled.
//!
//! One engine per process so that peak RSS and CPU are the engine's own. Every commit is
//! durable (fsync) before it returns; see `engines.rs` for the exact setting per engine.

mod engines;
mod metrics;

use anyhow::{bail, Context, Result};
use engines::{open_engine, Engine, EngineKind};
use metrics::{dir_size, pct, Probe};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Samples per write-ahead blob (66,000 samples/s at a 250 ms flush).
const WAL_SAMPLES: usize = 16_500;
/// Bytes per sample in the write-ahead blob.
const SAMPLE_BYTES: usize = 40;
/// Write-ahead commits in the ingest phase.
const WAL_COMMITS: u64 = 400;
/// Seal rounds and chunks per round (one chunk per point of the fleet).
const SEAL_ROUNDS: usize = 10;
const SEAL_POINTS: usize = 130_000;
/// Bytes per compressed chunk.
const CHUNK_BYTES: usize = 64;
/// Query data set: points × 2-minute chunks (24 h).
const QUERY_POINTS: usize = 2_000;
const QUERY_CHUNKS: usize = 720;
const QUERIES: usize = 1_000;
/// 2 minutes in ms: one seal window.
const SEAL_SPAN_MS: i64 = 120_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// splitmix64: deterministic, dependency-free pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Point ids shaped like the fleet's: `XM-0001/P1.frequency`.
fn point_ids(n: usize) -> Vec<String> {
    const DEVICES: [&str; 8] = ["P1", "P2", "P3", "P4", "T1", "V1", "F1", "M1"];
    const MEASUREMENTS: [&str; 8] = [
        "frequency",
        "current",
        "pressure",
        "level",
        "flow",
        "running",
        "temperature",
        "power",
    ];
    let mut out = Vec::with_capacity(n);
    'outer: for room in 1.. {
        for d in DEVICES {
            for m in MEASUREMENTS {
                out.push(format!("XM-{room:04}/{d}.{m}"));
                if out.len() == n {
                    break 'outer;
                }
            }
        }
    }
    out
}

/// One write-ahead blob of `WAL_SAMPLES` raw samples: point index u32, ts i64, value f64,
/// quality u8, padding — the shape of the historian's flush, partly compressible like real
/// telemetry (timestamps and indices are regular, values are noisy).
fn wal_blob(seq: u64, rng: &mut Rng) -> Vec<u8> {
    let mut blob = Vec::with_capacity(WAL_SAMPLES * SAMPLE_BYTES);
    let ts = T0 + seq as i64 * 250;
    for i in 0..WAL_SAMPLES {
        let mut s = [0u8; SAMPLE_BYTES];
        s[0..4].copy_from_slice(&(i as u32).to_le_bytes());
        s[4..12].copy_from_slice(&(ts + (i % 250) as i64).to_le_bytes());
        let v = 50.0 + (rng.next_u64() % 10_000) as f64 / 100.0;
        s[12..20].copy_from_slice(&v.to_le_bytes());
        s[20] = 0xC0;
        rng.fill(&mut s[21..29]);
        blob.extend_from_slice(&s);
    }
    blob
}

#[derive(Debug)]
struct Args {
    engine: EngineKind,
    crash: bool,
    dir: PathBuf,
    kills: usize,
    child: bool,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let engine: EngineKind = it
        .next()
        .context("usage: enginebench <engine> [crash] [--dir D] [--kills N]")?
        .parse()?;
    let mut args = Args {
        engine,
        crash: false,
        dir: std::env::temp_dir().join(format!("enginebench-{}", engine.name())),
        kills: 3,
        child: false,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "crash" => args.crash = true,
            "crash-child" => args.child = true,
            "--dir" => args.dir = PathBuf::from(it.next().context("--dir needs a value")?),
            "--kills" => args.kills = it.next().context("--kills needs a value")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if args.child {
        return crash_child(args.engine, &args.dir);
    }
    if args.crash {
        return crash_test(&args);
    }
    run_bench(args.engine, &args.dir)
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

fn run_bench(kind: EngineKind, root: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    println!("## {} ({})", kind.name(), kind.setting());
    println!();

    // ---- 1 + 2: write-ahead ingest, then seals, on one store ----
    let dir = root.join("ingest");
    let mut eng = open_engine(kind, &dir)?;
    let mut rng = Rng::new(0x5eed);
    let blobs: Vec<Vec<u8>> = (0..8).map(|s| wal_blob(s, &mut rng)).collect();
    let blob_bytes = blobs[0].len();

    let probe = Probe::start();
    let mut lat = Vec::with_capacity(WAL_COMMITS as usize);
    for seq in 0..WAL_COMMITS {
        let blob = &blobs[(seq % blobs.len() as u64) as usize];
        let t = Instant::now();
        eng.wal_commit(seq, blob)?;
        lat.push(t.elapsed());
    }
    let p = probe.stop();
    let logical = WAL_COMMITS * blob_bytes as u64;
    println!("### 1. WAL ingest: {WAL_COMMITS} durable commits of one {blob_bytes}-byte blob ({WAL_SAMPLES} samples × {SAMPLE_BYTES} B)");
    println!();
    println!("| commits/s | samples/s | p50 commit ms | p99 commit ms | max ms | wall s | CPU s (user+sys) | CPU s / 1M samples | bytes written (block layer) | write amp. | dir after |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {:.0} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.3} | {} MiB | {:.2}× | {} MiB |",
        WAL_COMMITS as f64 / p.wall.as_secs_f64(),
        (WAL_COMMITS as usize * WAL_SAMPLES) as f64 / p.wall.as_secs_f64(),
        fmt_ms(pct(&mut lat, 50.0)),
        fmt_ms(pct(&mut lat, 99.0)),
        fmt_ms(pct(&mut lat, 100.0)),
        p.wall.as_secs_f64(),
        p.cpu.as_secs_f64(),
        p.cpu.as_secs_f64() / (WAL_COMMITS as f64 * WAL_SAMPLES as f64 / 1e6),
        mib(p.write_bytes),
        p.write_bytes as f64 / logical as f64,
        mib(dir_size(&dir)?),
    );
    println!();

    // Seals: each round writes one chunk per point and drops its share of the write-ahead.
    let points = point_ids(SEAL_POINTS);
    let drops_per_round = WAL_COMMITS / SEAL_ROUNDS as u64;
    let probe = Probe::start();
    let mut lat = Vec::with_capacity(SEAL_ROUNDS);
    let mut chunk = vec![0u8; CHUNK_BYTES * SEAL_POINTS];
    for round in 0..SEAL_ROUNDS {
        rng.fill(&mut chunk);
        let start = T0 + round as i64 * SEAL_SPAN_MS;
        let drop: Vec<u64> =
            (round as u64 * drops_per_round..(round as u64 + 1) * drops_per_round).collect();
        let t = Instant::now();
        eng.seal(&points, start, &chunk, CHUNK_BYTES, &drop)?;
        lat.push(t.elapsed());
    }
    let p = probe.stop();
    let stored = (SEAL_ROUNDS * SEAL_POINTS * CHUNK_BYTES) as u64;
    let key_bytes: u64 =
        points.iter().map(|p| p.len() as u64 + 8).sum::<u64>() * SEAL_ROUNDS as u64;
    let dir_live = dir_size(&dir)?;
    println!("### 2. Seal: {SEAL_ROUNDS} durable transactions of {SEAL_POINTS} chunks × {CHUNK_BYTES} B + removal of {drops_per_round} WAL blobs each");
    println!();
    println!("| p50 round ms | max round ms | chunks/s | wall s | CPU s | bytes written | dir at end of phase | dir after close/compaction | disk bytes / chunk byte | disk bytes / (key+chunk) byte |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // Final: compaction where the engine has one, then close.
    let probe_close = Probe::start();
    let close_note = eng.close_compact()?;
    let pc = probe_close.stop();
    let dir_final = dir_size(&dir)?;
    println!(
        "| {} | {} | {:.0} | {:.2} | {:.2} | {} MiB | {} MiB | {} MiB | {:.2} | {:.2} |",
        fmt_ms(pct(&mut lat, 50.0)),
        fmt_ms(pct(&mut lat, 100.0)),
        (SEAL_ROUNDS * SEAL_POINTS) as f64 / p.wall.as_secs_f64(),
        p.wall.as_secs_f64(),
        p.cpu.as_secs_f64(),
        mib(p.write_bytes),
        mib(dir_live),
        mib(dir_final),
        dir_final as f64 / stored as f64,
        dir_final as f64 / (stored + key_bytes) as f64,
    );
    println!();
    println!(
        "Stored: {} chunk bytes + {} key bytes ({} chunks). Close/compaction ({close_note}): {:.2} s wall, {:.2} s CPU, {} MiB written.",
        stored,
        key_bytes,
        SEAL_ROUNDS * SEAL_POINTS,
        pc.wall.as_secs_f64(),
        pc.cpu.as_secs_f64(),
        mib(pc.write_bytes)
    );
    println!();
    let t = Instant::now();
    let eng2 = open_engine(kind, &dir)?;
    let reopen = t.elapsed();
    drop(eng2);
    println!("Reopen after a clean close: {} ms.", fmt_ms(reopen));
    println!();

    // ---- 3: queries over 24 h of one point ----
    let qdir = root.join("query");
    let mut eng = open_engine(kind, &qdir)?;
    let qpoints = point_ids(QUERY_POINTS);
    let mut chunk = vec![0u8; CHUNK_BYTES * QUERY_POINTS];
    let probe = Probe::start();
    let mut load_lat = Vec::with_capacity(QUERY_CHUNKS);
    let mut last_hour = Probe::start();
    for round in 0..QUERY_CHUNKS {
        rng.fill(&mut chunk);
        let start = T0 + round as i64 * SEAL_SPAN_MS;
        if round == QUERY_CHUNKS - 30 {
            last_hour = Probe::start();
        }
        let t = Instant::now();
        eng.seal(&qpoints, start, &chunk, CHUNK_BYTES, &[])?;
        load_lat.push(t.elapsed());
    }
    let load = probe.stop();
    let last_hour = last_hour.stop();
    let qdir_size = dir_size(&qdir)?;
    let mut late = load_lat[QUERY_CHUNKS - 30..].to_vec();
    println!("### 2b. Seals into a deep store: {QUERY_CHUNKS} durable seals of {QUERY_POINTS} chunks (24 h of 2-minute chunks for {QUERY_POINTS} points)");
    println!();
    println!("| wall s | CPU s | bytes written | p50 seal ms | p99 seal ms | last 30 seals: p50 ms | last 30 seals: bytes written per seal | … per chunk | dir after load |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {:.1} | {:.1} | {} MiB | {} | {} | {} | {} MiB | {:.0} B | {} MiB |",
        load.wall.as_secs_f64(),
        load.cpu.as_secs_f64(),
        mib(load.write_bytes),
        fmt_ms(pct(&mut load_lat, 50.0)),
        fmt_ms(pct(&mut load_lat, 99.0)),
        fmt_ms(pct(&mut late, 50.0)),
        mib(last_hour.write_bytes / 30),
        last_hour.write_bytes as f64 / (30 * QUERY_POINTS) as f64,
        mib(qdir_size),
    );
    println!();
    let from = T0;
    let to = T0 + QUERY_CHUNKS as i64 * SEAL_SPAN_MS - 1;
    let run_queries = |eng: &dyn Engine, rng: &mut Rng| -> Result<(Vec<Duration>, Duration)> {
        let mut lat = Vec::with_capacity(QUERIES);
        let probe = Probe::start();
        for _ in 0..QUERIES {
            let p = &qpoints[(rng.next_u64() % QUERY_POINTS as u64) as usize];
            let t = Instant::now();
            let (n, bytes) = eng.query(p, from, to)?;
            lat.push(t.elapsed());
            if n != QUERY_CHUNKS || bytes != QUERY_CHUNKS * CHUNK_BYTES {
                bail!("query {p}: {n} chunks / {bytes} bytes, expected {QUERY_CHUNKS}");
            }
        }
        Ok((lat, probe.stop().cpu))
    };
    let (mut warm, warm_cpu) = run_queries(eng.as_ref(), &mut rng)?;
    eng.close_compact()?; // consumes and closes the store
    let eng = open_engine(kind, &qdir)?;
    let (mut reopened, reopened_cpu) = run_queries(eng.as_ref(), &mut rng)?;
    drop(eng);
    println!("### 3. Query: {QUERIES} random points, all {QUERY_CHUNKS} chunks of 24 h each ({QUERY_POINTS} points × {QUERY_CHUNKS} chunks loaded as {QUERY_CHUNKS} durable seals of {QUERY_POINTS} chunks, {:.1} s load)", load.wall.as_secs_f64());
    println!();
    println!("| when | p50 ms | p99 ms | max ms | CPU s for 1,000 queries |");
    println!("|---|---|---|---|---|");
    println!(
        "| right after loading (same process, background work may run) | {:.3} | {:.3} | {:.3} | {:.2} |",
        pct(&mut warm, 50.0).as_secs_f64() * 1e3,
        pct(&mut warm, 99.0).as_secs_f64() * 1e3,
        pct(&mut warm, 100.0).as_secs_f64() * 1e3,
        warm_cpu.as_secs_f64()
    );
    println!(
        "| after close (+compaction) and reopen, engine cache cold, OS page cache warm | {:.3} | {:.3} | {:.3} | {:.2} |",
        pct(&mut reopened, 50.0).as_secs_f64() * 1e3,
        pct(&mut reopened, 99.0).as_secs_f64() * 1e3,
        pct(&mut reopened, 100.0).as_secs_f64() * 1e3,
        reopened_cpu.as_secs_f64()
    );
    println!();
    println!(
        "### 5. Peak RSS of the process (all phases): {} MiB",
        mib(metrics::peak_rss_bytes()?)
    );
    println!();
    std::fs::remove_dir_all(root.join("ingest"))?;
    // The query store stays for `crash`, which reuses it as its starting state.
    Ok(())
}

// ---- crash test: kill -9 a writer, reopen, check every acknowledged commit ----

/// Child: open the store, write WAL blobs and seals forever, printing each acknowledged seq.
fn crash_child(kind: EngineKind, dir: &Path) -> Result<()> {
    let mut eng = open_engine(kind, dir)?;
    let first = eng.max_wal_seq()?.map_or(1_000_000, |s| s + 1);
    let mut rng = Rng::new(first);
    let blob = wal_blob(first, &mut rng);
    let points = point_ids(QUERY_POINTS);
    let mut chunk = vec![0u8; CHUNK_BYTES * QUERY_POINTS];
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut seq = first;
    loop {
        eng.wal_commit(seq, &blob)?;
        writeln!(out, "wal {seq}")?;
        out.flush()?;
        if seq % 8 == 0 {
            // a seal of 2,000 chunks at a new time, dropping nothing (the WAL is checked).
            rng.fill(&mut chunk);
            let start = T0 + (QUERY_CHUNKS as i64 + seq as i64) * SEAL_SPAN_MS;
            eng.seal(&points, start, &chunk, CHUNK_BYTES, &[])?;
            writeln!(out, "seal {start}")?;
            out.flush()?;
        }
        seq += 1;
    }
}

fn crash_test(args: &Args) -> Result<()> {
    let dir = args.dir.join("query");
    if !dir.exists() {
        bail!(
            "{} missing: run `enginebench {}` first",
            dir.display(),
            args.engine.name()
        );
    }
    let exe = std::env::current_exe()?;
    println!(
        "### 4. kill -9 test ({}): writer killed at a pseudo-random moment, store reopened",
        args.engine.name()
    );
    println!();
    println!("| kill | acked WAL commits | acked seals | kill after ms | reopen (recovery) ms | all acked WAL present | all acked seals present | 24 h query intact |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut rng = Rng::new(42);
    for k in 0..args.kills {
        let mut child = Command::new(&exe)
            .arg(args.engine.name())
            .arg("crash-child")
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let kill_after = Duration::from_millis(1_500 + rng.next_u64() % 2_000);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Collect acknowledgements until the deadline, then SIGKILL and drain the pipe.
        let deadline = Instant::now() + kill_after;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("writer exited early")
                }
            }
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        let _ = reader.join();
        lines.extend(rx.try_iter());
        let mut wal = Vec::new();
        let mut seals = Vec::new();
        for line in lines {
            if let Some(s) = line.strip_prefix("wal ") {
                wal.push(s.parse::<u64>()?);
            } else if let Some(s) = line.strip_prefix("seal ") {
                seals.push(s.parse::<i64>()?);
            }
        }
        let t = Instant::now();
        let eng = open_engine(args.engine, &dir)?;
        let reopen = t.elapsed();
        let mut wal_ok = true;
        for s in &wal {
            if !eng.wal_present(*s)? {
                wal_ok = false;
            }
        }
        let probe_point = &point_ids(QUERY_POINTS)[(k * 7) % QUERY_POINTS];
        let mut seals_ok = true;
        for s in &seals {
            let (n, _) = eng.query(probe_point, *s, *s)?;
            if n != 1 {
                seals_ok = false;
            }
        }
        let (n, _) = eng.query(probe_point, T0, T0 + QUERY_CHUNKS as i64 * SEAL_SPAN_MS - 1)?;
        drop(eng);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            k + 1,
            wal.len(),
            seals.len(),
            kill_after.as_millis(),
            fmt_ms(reopen),
            if wal_ok { "yes" } else { "**NO**" },
            if seals_ok { "yes" } else { "**NO**" },
            if n == QUERY_CHUNKS { "yes" } else { "**NO**" },
        );
    }
    println!();
    Ok(())
}
