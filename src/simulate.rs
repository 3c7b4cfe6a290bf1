//! `cistern simulate`: the field simulator on its own — publishing to an external broker like a
//! fleet of real gateways, or writing a deterministic CSV trace of every reading.

use crate::field::{self, FieldConfig, FieldHandle};
use crate::sim::{self, Simulator};
use cistern_schemas::{DeviceKind, Timestamp};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
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
        ..FieldConfig::default()
    };
    field::run(&handle, &inventory, config, HashMap::new(), rx);
    tracing::info!(rooms = opts.rooms, %mqtt, speed = opts.speed, "simulating");
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
    Ok(())
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
