//! The node's backups: one at a time, asked for through the API (`POST /api/v1/admin/backup`)
//! or made on the `[backup]` schedule, each audited (`backup`) and measured
//! (`cistern_backup_*`); the schedule keeps the newest `keep` of its own backups in `dir`.
//!
//! A backup runs on a thread of its own (`backup`), never on the actor threads, the HTTP
//! workers or the store's I/O runtime. A failure (a destination that fills up, a read-only
//! one) removes the partial backup, is counted by reason, logged and audited; the node goes
//! on as before.

use super::{make, BackupError, BackupSource, Manifest, MANIFEST_FILE};
use crate::auth::audit::{AuditEntry, AuditLog};
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The prefix of a scheduled backup's directory name (then the UTC time it began).
pub const SCHEDULED_PREFIX: &str = "cistern-backup-";

/// `[backup]`: scheduled backups (none without `dir`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Where the node makes its scheduled backups (relative paths are relative to the
    /// configuration file). None: no scheduled backups.
    pub dir: Option<PathBuf>,
    /// How often.
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    /// How many of the newest scheduled backups in `dir` are kept.
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            dir: None,
            every: Duration::from_secs(24 * 3600),
            keep: 7,
        }
    }
}

/// Why `[backup]` cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BackupConfigError {
    #[error("[backup] every must be at least 1s")]
    EveryTooShort,
    #[error("[backup] keep must be at least 1")]
    KeepNone,
}

impl BackupConfig {
    pub fn validate(&self) -> Result<(), BackupConfigError> {
        if self.every < Duration::from_secs(1) {
            return Err(BackupConfigError::EveryTooShort);
        }
        if self.keep == 0 {
            return Err(BackupConfigError::KeepNone);
        }
        Ok(())
    }

    /// Makes a relative `dir` relative to `base` (the configuration's folder).
    pub fn resolve_relative_to(&mut self, base: &Path) {
        if let Some(dir) = &mut self.dir {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }
}

/// `cistern_backup_*`.
#[derive(Clone, Debug)]
pub struct BackupMetrics {
    pub last_success: Gauge,
    pub last_duration: Gauge,
    pub last_bytes: IntGauge,
    pub succeeded: IntCounter,
    pub failures: IntCounterVec,
    pub running: IntGauge,
}

impl BackupMetrics {
    fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            last_success: Gauge::new(
                "cistern_backup_last_success_timestamp_seconds",
                "When the last successful backup finished (Unix time; 0: none since start).",
            )?,
            last_duration: Gauge::new(
                "cistern_backup_last_duration_seconds",
                "How long the last successful backup took.",
            )?,
            last_bytes: IntGauge::new(
                "cistern_backup_last_size_bytes",
                "Bytes of the last successful backup.",
            )?,
            succeeded: IntCounter::new("cistern_backup_total", "Backups made.")?,
            failures: IntCounterVec::new(
                Opts::new(
                    "cistern_backup_failures_total",
                    "Backups that failed or were refused, by reason.",
                ),
                &["reason"],
            )?,
            running: IntGauge::new("cistern_backup_running", "1 while a backup is running.")?,
        })
    }

    fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        // Every reason from the start (at 0), so that an alert on one has a series to read.
        for reason in BackupError::LABELS {
            self.failures.with_label_values(&[reason]);
        }
        registry.register(Box::new(self.last_success.clone()))?;
        registry.register(Box::new(self.last_duration.clone()))?;
        registry.register(Box::new(self.last_bytes.clone()))?;
        registry.register(Box::new(self.succeeded.clone()))?;
        registry.register(Box::new(self.failures.clone()))?;
        registry.register(Box::new(self.running.clone()))
    }
}

/// The node's backups (see the module doc).
#[derive(Debug)]
pub struct Backups {
    /// None: the store is not the embedded one (every backup is refused).
    source: Option<BackupSource>,
    config: BackupConfig,
    node: String,
    audit: Arc<AuditLog>,
    metrics: BackupMetrics,
    running: AtomicBool,
}

/// Clears the running flag (and gauge) when a backup ends, however it ends.
struct RunningGuard<'a>(&'a Backups);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.metrics.running.set(0);
        self.0.running.store(false, Ordering::SeqCst);
    }
}

impl Backups {
    pub fn new(
        source: Option<BackupSource>,
        config: BackupConfig,
        node: impl Into<String>,
        audit: Arc<AuditLog>,
    ) -> Result<Arc<Self>, prometheus::Error> {
        Ok(Arc::new(Self {
            source,
            config,
            node: node.into(),
            audit,
            metrics: BackupMetrics::new()?,
            running: AtomicBool::new(false),
        }))
    }

    /// Registers `cistern_backup_*` with the node's registry.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        self.metrics.register(registry)
    }

    pub fn metrics(&self) -> &BackupMetrics {
        &self.metrics
    }

    pub fn config(&self) -> &BackupConfig {
        &self.config
    }

    /// Makes a backup in `dest` (a new directory) for `user`, on a thread of its own;
    /// audited and measured either way.
    pub async fn backup_to(
        self: &Arc<Self>,
        dest: PathBuf,
        user: &str,
    ) -> Result<Manifest, BackupError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        let target = dest.display().to_string();
        let spawned = std::thread::Builder::new()
            .name("backup".into())
            .spawn(move || {
                let _ = tx.send(me.run(&dest));
            });
        let result = match spawned {
            Ok(_) => rx.await.unwrap_or_else(|_| {
                Err(BackupError::Write {
                    path: target.clone(),
                    reason: "the backup thread ended without an answer".into(),
                })
            }),
            Err(e) => Err(BackupError::Write {
                path: target.clone(),
                reason: format!("cannot start the backup thread: {e}"),
            }),
        };
        let detail = match &result {
            Ok(m) => format!(
                "{} bytes, {} ms",
                m.bytes(),
                m.finished_ms.saturating_sub(m.started_ms)
            ),
            Err(e) => e.to_string(),
        };
        self.audit.record(AuditEntry::now(
            user,
            "backup",
            target,
            detail,
            result.is_ok(),
        ));
        result
    }

    /// One backup, blocking (the `backup` thread).
    fn run(&self, dest: &Path) -> Result<Manifest, BackupError> {
        let result = self.run_inner(dest);
        match &result {
            Ok(m) => {
                self.metrics.succeeded.inc();
                self.metrics.last_success.set(m.finished_ms as f64 / 1000.0);
                self.metrics
                    .last_bytes
                    .set(i64::try_from(m.bytes()).unwrap_or(i64::MAX));
                tracing::info!(
                    dest = %dest.display(),
                    bytes = m.bytes(),
                    ms = m.finished_ms.saturating_sub(m.started_ms),
                    "backup made"
                );
            }
            Err(error) => {
                self.metrics
                    .failures
                    .with_label_values(&[error.label()])
                    .inc();
                tracing::warn!(dest = %dest.display(), %error, "backup failed");
            }
        }
        result
    }

    fn run_inner(&self, dest: &Path) -> Result<Manifest, BackupError> {
        let source = self.source.as_ref().ok_or(BackupError::NotEmbedded)?;
        if self
            .running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(BackupError::Running);
        }
        let _guard = RunningGuard(self);
        self.metrics.running.set(1);
        let started = Instant::now();
        let m = make(source, dest, &self.node, &mut |_| {})?;
        self.metrics
            .last_duration
            .set(started.elapsed().as_secs_f64());
        Ok(m)
    }

    /// Runs the `[backup]` schedule on `rt` until `stop` turns true (nothing without `dir`).
    pub fn spawn_schedule(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        stop: watch::Receiver<bool>,
    ) {
        let Some(dir) = self.config.dir.clone() else {
            return;
        };
        let me = self.clone();
        rt.spawn(async move { me.schedule(dir, stop).await });
    }

    async fn schedule(self: Arc<Self>, dir: PathBuf, mut stop: watch::Receiver<bool>) {
        let every = self.config.every;
        // Due `every` after the newest backup in `dir`; a node without one makes its first
        // soon after start.
        let newest = newest_finished_ms(&dir);
        let now_ms = cistern_schemas::Timestamp::now().0;
        let mut wait = match newest {
            Some(ms) => {
                let due = ms.saturating_add(i64::try_from(every.as_millis()).unwrap_or(i64::MAX));
                Duration::from_millis(u64::try_from(due - now_ms).unwrap_or(0))
            }
            None => every.min(Duration::from_secs(60)),
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            let name = scheduled_name(std::time::SystemTime::now());
            if let Err(error) = tokio::fs::create_dir_all(&dir).await {
                tracing::warn!(dir = %dir.display(), %error, "backup: cannot create [backup] dir");
            }
            let _ = self.backup_to(dir.join(&name), "scheduler").await;
            let keep = self.config.keep;
            let pruned = dir.clone();
            let _ = tokio::task::spawn_blocking(move || prune(&pruned, keep)).await;
            wait = every;
        }
    }
}

/// `cistern-backup-20261207T210000Z` for a backup beginning at `t`.
pub fn scheduled_name(t: std::time::SystemTime) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{SCHEDULED_PREFIX}{stamp}")
}

/// The scheduled backups in `dir` (complete ones: with a manifest), oldest first.
pub fn scheduled_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(SCHEDULED_PREFIX) && !n.ends_with(".partial"))
                && p.join(MANIFEST_FILE).is_file()
        })
        .collect();
    found.sort();
    found
}

fn newest_finished_ms(dir: &Path) -> Option<i64> {
    let newest = scheduled_in(dir).pop()?;
    let text = std::fs::read(newest.join(MANIFEST_FILE)).ok()?;
    let m: serde_json::Value = serde_json::from_slice(&text).ok()?;
    m["finished_ms"].as_i64()
}

/// Keeps the newest `keep` scheduled backups in `dir` and removes the rest, and the partial
/// ones a stopped node left (one backup runs at a time, and this runs after it).
pub fn prune(dir: &Path, keep: usize) {
    let all = scheduled_in(dir);
    let old = all.len().saturating_sub(keep);
    let partial = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(SCHEDULED_PREFIX) && n.ends_with(".partial"))
        });
    for path in all.into_iter().take(old).chain(partial) {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "backup: old backup removed"),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "backup: cannot remove an old backup")
            }
        }
    }
}
