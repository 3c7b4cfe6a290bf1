//! `cistern simulate`: the field simulator on its own — publishing to an external broker like a
//! fleet of real gateways, or writing a deterministic CSV trace of every reading.
//!
//! With `--faults-stdin` it also takes faults asked for while it runs, one a line on stdin
//! ([`parse_fault_command`]): `cistern bench failover` times faults around the moment it loses
//! a node, so that alarm transitions fall in the takeover.

use crate::lab::field::{self, FieldConfig, FieldHandle, PublishStats};
use crate::lab::sim::{self, Simulator};
use cistern_schemas::{DeviceKind, Timestamp};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A fixed start for traces, so that the same seed gives the same file: Monday 2026-01-05
/// 00:00 UTC.
pub const TRACE_EPOCH: Timestamp = Timestamp(1_767_571_200_000);

/// Options of `cistern simulate`.
#[derive(Clone, Debug)]
pub struct SimulateOptions {
    pub rooms: usize,
    pub seed: u64,
    /// Publish to this broker as the rooms' gateways.
    pub mqtt: Option<SocketAddr>,
    /// Write every reading here instead (as fast as the machine goes).
    pub csv: Option<PathBuf>,
    /// Simulated seconds to run (forever when absent, MQTT only).
    pub seconds: Option<u64>,
    pub speed: f64,
    pub period: Duration,
    /// Faults injected per room per simulated day (MQTT mode), drawn from the seed.
    pub faults_per_room_day: f64,
    /// Print a `stats ...` line on stdout this often (MQTT mode), for the fleet benchmark.
    pub stats_every: Option<Duration>,
    /// Publish one message per device and reading instead of one room message per reading.
    pub per_device: bool,
    /// Read faults to inject from stdin (MQTT mode), one a line: see [`parse_fault_command`].
    pub faults_stdin: bool,
    /// MQTT over TLS: the broker's CA and the gateways' client certificate.
    pub tls: Option<crate::tls::ClientTlsConfig>,
}

/// Why the simulator could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("cannot write the trace {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("say where the readings go: --mqtt HOST:PORT or --csv FILE")]
    NoOutput,
    #[error("MQTT TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("a CSV trace needs --seconds")]
    Unbounded,
    #[error("the trace writer failed")]
    Join,
}

/// Runs the simulator as asked.
pub async fn run(
    opts: SimulateOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SimulateError> {
    let inventory = sim::generate_fleet(opts.rooms, opts.seed);
    if let Some(path) = opts.csv.clone() {
        let seconds = opts.seconds.ok_or(SimulateError::Unbounded)?;
        return tokio::task::spawn_blocking(move || write_trace(&opts, &inventory, &path, seconds))
            .await
            .map_err(|_| SimulateError::Join)?;
    }
    let Some(mqtt) = opts.mqtt else {
        return Err(SimulateError::NoOutput);
    };
    let handle = FieldHandle::new(&inventory, opts.seed, Timestamp::now());
    let (tx, rx) = watch::channel(false);
    let config = FieldConfig {
        mqtt: Some(mqtt),
        speed: opts.speed,
        period: opts.period,
        per_device: opts.per_device,
        tls: match &opts.tls {
            Some(t) => Some(Arc::new(t.client_config()?)),
            None => None,
        },
        ..FieldConfig::default()
    };
    let run = field::run(&handle, &inventory, config, HashMap::new(), rx.clone());
    let stats = run.stats.clone();
    let asked = Arc::new(FaultCommands::default());
    if opts.faults_stdin {
        tokio::spawn(read_fault_commands(handle.clone(), asked.clone()));
    }
    let faults = spawn_faults(&handle, &inventory, &opts, asked.clone(), rx.clone());
    if let Some(every) = opts.stats_every {
        tokio::spawn(print_stats(stats.clone(), every, rx));
    }
    tracing::info!(
        rooms = opts.rooms,
        %mqtt,
        speed = opts.speed,
        per_device = opts.per_device,
        "simulating"
    );
    // The command's one line on stdout: scripts and tests wait for it.
    println!("ready mqtt={mqtt} rooms={}", opts.rooms);
    match opts.seconds {
        Some(s) => {
            let wall = Duration::from_secs(s).div_f64(opts.speed.max(1e-3));
            tokio::select! {
                _ = tokio::time::sleep(wall) => {}
                _ = stop.changed() => {}
            }
        }
        None => {
            let _ = stop.changed().await;
        }
    }
    let _ = tx.send(true);
    let injected = faults.await.unwrap_or(0);
    let _ = run.task.await;
    println!(
        "{} refused_commands={}",
        stats_line(&stats, injected, true),
        asked.refused.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

/// Faults asked for on stdin, waiting for their time; and the lines refused.
#[derive(Debug, Default)]
struct FaultCommands {
    queue: std::sync::Mutex<Vec<sim::PlannedFault>>,
    refused: std::sync::atomic::AtomicU64,
}

/// `fault ROOM KIND SECONDS [IN_SECONDS]`: inject fault KIND (a name of
/// [`sim::FaultKind::ALL`]) into ROOM for SECONDS, starting IN_SECONDS after `now` (at once when
/// absent). Seconds may have a fraction.
pub fn parse_fault_command(line: &str, now: Timestamp) -> Result<sim::PlannedFault, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let seconds = |what: &str, s: &str| -> Result<Duration, String> {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v <= 86_400.0 * 365.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{what} {s:?} is not a number of seconds"))
    };
    match words.as_slice() {
        ["fault", room, kind, length, rest @ ..] if rest.len() <= 1 => {
            let room = cistern_schemas::RoomId::new(room).map_err(|e| e.to_string())?;
            let fault: sim::FaultKind = kind
                .parse()
                .map_err(|e: sim::UnknownFaultKind| e.to_string())?;
            let length = seconds("the length", length)?;
            let after = match rest.first() {
                Some(s) => seconds("the start", s)?,
                None => Duration::ZERO,
            };
            Ok(sim::PlannedFault {
                at: now + after,
                room,
                fault,
                length,
            })
        }
        _ => Err("expected `fault ROOM KIND SECONDS [IN_SECONDS]`".to_owned()),
    }
}

/// Reads fault commands from stdin until it closes; a line that does not parse is logged,
/// counted and skipped.
async fn read_fault_commands(handle: FieldHandle, into: Arc<FaultCommands>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot read fault commands from stdin any more");
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match parse_fault_command(&line, handle.now()) {
            Ok(f) => into.queue.lock().unwrap_or_else(|p| p.into_inner()).push(f),
            Err(error) => {
                into.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(line = %line.chars().take(200).collect::<String>(), %error, "fault command refused");
            }
        }
    }
}

/// Injects the seeded fault plan, and the faults asked for on stdin, as simulated time reaches
/// each fault; returns how many went in. Each injection is announced on stdout as an
/// `injected room=… fault=… at_ms=… ends_ms=…` line.
fn spawn_faults(
    handle: &FieldHandle,
    inventory: &cistern_schemas::inventory::Inventory,
    opts: &SimulateOptions,
    asked: Arc<FaultCommands>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    let span = Duration::from_secs(opts.seconds.unwrap_or(86_400));
    let plan = sim::fault_plan(
        inventory.rooms.iter().map(|r| &r.id),
        opts.seed,
        handle.now(),
        span,
        opts.faults_per_room_day,
    );
    let handle = handle.clone();
    let listening = opts.faults_stdin;
    tokio::spawn(async move {
        let mut injected = 0;
        let mut pending = plan;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while listening || !pending.is_empty() {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {}
            }
            let asked = std::mem::take(&mut *asked.queue.lock().unwrap_or_else(|p| p.into_inner()));
            if !asked.is_empty() {
                pending.extend(asked);
                pending.sort_by_key(|p| p.at);
            }
            let now = handle.now();
            let due = pending.partition_point(|f| f.at <= now);
            for f in pending.drain(..due) {
                match handle.inject(&f.room, f.fault, f.length) {
                    Ok(()) => {
                        injected += 1;
                        if listening {
                            println!(
                                "injected room={} fault={} at_ms={} ends_ms={}",
                                f.room,
                                f.fault,
                                now.0,
                                (now + f.length).0
                            );
                        }
                    }
                    Err(error) => tracing::debug!(room = %f.room, %error, "fault not injected"),
                }
            }
        }
        injected
    })
}

async fn print_stats(stats: Arc<PublishStats>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => println!("{}", stats_line(&stats, 0, false)),
        }
    }
}

/// `stats` (periodic) or `published` (final) and the gateways' counters, as key=value.
fn stats_line(stats: &PublishStats, faults: usize, last: bool) -> String {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        "{} t_ms={} messages={} points={} replayed_points={} failed={} gateway_dropped={} gateway_buffered={} faults={}",
        if last { "published" } else { "stats" },
        Timestamp::now().0,
        get(&stats.messages),
        get(&stats.points),
        get(&stats.replayed_points),
        get(&stats.failed),
        get(&stats.gateway_dropped),
        get(&stats.gateway_buffered),
        faults,
    )
}

fn write_trace(
    opts: &SimulateOptions,
    inventory: &cistern_schemas::inventory::Inventory,
    path: &PathBuf,
    seconds: u64,
) -> Result<(), SimulateError> {
    let err = |source| SimulateError::Write {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "t_ms,room,device,point,value").map_err(err)?;
    let mut sim = Simulator::new(inventory, opts.seed, TRACE_EPOCH);
    let steps = seconds / opts.period.as_secs().max(1);
    for i in 0..=steps {
        if i > 0 {
            sim.step(opts.period);
        }
        for r in sim.readings() {
            for (unit, values) in &r.devices {
                let specs = DeviceKind::points(unit.kind());
                for (spec, v) in specs.iter().zip(values) {
                    writeln!(out, "{},{},{},{},{}", r.t.0, r.room, unit, spec.name, v)
                        .map_err(err)?;
                }
            }
        }
    }
    out.flush().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_commands_parse_and_bad_ones_say_why() {
        let now = Timestamp(1_000_000);
        let f = parse_fault_command("fault XM-0003 pump_trip 12.5", now).unwrap();
        assert_eq!(f.room.as_str(), "XM-0003");
        assert_eq!(f.fault, sim::FaultKind::PumpTrip);
        assert_eq!(f.length, Duration::from_millis(12_500));
        assert_eq!(f.at, now);
        let later = parse_fault_command("  fault XM-0003 smoke 5 2.5 ", now).unwrap();
        assert_eq!(later.at, Timestamp(1_002_500));
        for (line, why) in [
            ("fault XM-0003 pump_trip", "expected `fault"),
            ("inject XM-0003 pump_trip 5", "expected `fault"),
            ("fault XM-0003 pump_trip 5 1 extra", "expected `fault"),
            ("fault XM-0003 meteor 5", "unknown fault kind"),
            ("fault XM-0003 pump_trip -5", "not a number of seconds"),
            ("fault XM-0003 pump_trip NaN", "not a number of seconds"),
            ("fault XM-0003 pump_trip 5 soon", "not a number of seconds"),
            ("fault ../etc pump_trip 5", ""),
        ] {
            let error = parse_fault_command(line, now).unwrap_err();
            assert!(error.contains(why), "{line:?}: {error}");
        }
    }
}
