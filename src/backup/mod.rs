//! Backup and restore of a single node's data (issue 24, item 6).
//!
//! A backup is a directory: `history.redb` (the embedded store — telemetry chunks, alarm state
//! and events, actor snapshots, users and tokens, the audit log, business records),
//! `wal.redb` (the historian's write-ahead: samples accepted but not yet sealed into chunks)
//! and `manifest.json` ([`manifest`]: version, node, time, each file's size and SHA-256, the
//! entries of every table).
//!
//! **Consistency.** The node makes it ([`make`]), because only it can read its open redb
//! files: a snapshot (read transaction) of the write-ahead first, then one of the store, each
//! copied table by table into a fresh file (`crate::store::embedded::backup`). The order is
//! what makes it whole: a sample the node acknowledged before the backup began is durable in
//! the write-ahead; if its blob is still there at the first snapshot, it is copied; if it was
//! gone, the seal that removed it had committed its chunks to the store before — so before
//! the second snapshot, which copies them. A sample sealed in between is in both, and the
//! restored node's historian re-seals it idempotently, as after a crash.
//!
//! **Cost.** The copy runs on a blocking thread of its own, never on the actor threads or
//! the store's I/O runtime, in batches of [`BATCH`] entries per write transaction; redb's
//! readers do not block its writer, so ingest goes on. While the snapshot is open the live
//! store cannot reuse the pages freed after it, so the live file may grow by what is written
//! meanwhile.
//!
//! **Restore** ([`restore`]) verifies the whole backup first, then copies the files into an
//! empty data directory (a non-empty one is refused and left untouched); a node started on
//! it finds everything, and reads the write-ahead back as after a restart.
//!
//! ScyllaDB and etcd keep their own backups (`nodetool snapshot`, `etcdctl snapshot save`;
//! ops/backup.md): with `backend = "scylla"` a node has no embedded store to copy.

pub mod client;
pub mod manifest;
pub mod schedule;

pub use manifest::{verify, Manifest, MANIFEST_FILE};
pub use schedule::{BackupConfig, Backups};

use crate::store::embedded::backup::{self as copy, HISTORY_FILE, WAL_FILE};
use crate::store::StoreError;
use cistern_schemas::Timestamp;
use manifest::{sha256_file, FileEntry, FORMAT, VERSION};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Entries copied per write transaction of the backup's files.
pub const BATCH: usize = 20_000;

/// Why a backup or restore failed. Refusals ([`BackupError::is_refusal`]) touch nothing.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path} exists already: a backup goes to a new directory")]
    Exists { path: String },
    #[error("refusing to restore into {path}: it is not empty (restore goes to an empty data directory only)")]
    NotEmpty { path: String },
    #[error("{path} is not a Cistern backup: {why}")]
    NotABackup { path: String, why: String },
    #[error("the backup is corrupt: {file}: {what}")]
    Corrupt { file: String, what: String },
    #[error("the backup's {found} is not one this cistern reads ({supported})")]
    Version { found: String, supported: String },
    #[error("this node's store is not the embedded one: back up ScyllaDB with nodetool snapshot (ops/backup.md)")]
    NotEmbedded,
    #[error("a backup is running already")]
    Running,
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("the store failed during the backup: {0}")]
    Store(#[from] StoreError),
}

impl BackupError {
    /// Whether the request was refused as asked (exit status 2) rather than failing on the way.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            BackupError::Exists { .. }
                | BackupError::NotEmpty { .. }
                | BackupError::NotABackup { .. }
                | BackupError::Corrupt { .. }
                | BackupError::Version { .. }
                | BackupError::NotEmbedded
                | BackupError::Running
        )
    }

    /// Every [`BackupError::label`].
    pub const LABELS: &'static [&'static str] = &[
        "exists",
        "not_empty",
        "not_a_backup",
        "corrupt",
        "version",
        "not_embedded",
        "running",
        "read",
        "write",
    ];

    /// A short, stable label for metrics (one of [`BackupError::LABELS`]).
    pub fn label(&self) -> &'static str {
        match self {
            BackupError::Exists { .. } => "exists",
            BackupError::NotEmpty { .. } => "not_empty",
            BackupError::NotABackup { .. } => "not_a_backup",
            BackupError::Corrupt { .. } => "corrupt",
            BackupError::Version { .. } => "version",
            BackupError::NotEmbedded => "not_embedded",
            BackupError::Running => "running",
            BackupError::Read { .. } => "read",
            BackupError::Write { .. } | BackupError::Store(_) => "write",
        }
    }
}

/// What a backup copies: the node's open embedded store and write-ahead.
#[derive(Clone)]
pub struct BackupSource {
    pub history: Arc<redb::Database>,
    pub wal: Arc<redb::Database>,
}

impl std::fmt::Debug for BackupSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupSource")
    }
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The directory a backup to `dest` is built in before it is renamed to `dest`.
fn partial_of(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

fn fsync(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(write_err(path))
}

/// Makes a backup of `source` in `dest` (a directory that must not exist; its parent is
/// created), as node `node`. Blocking: call it on a thread of its own. `progress` is told the
/// entries copied so far. On any failure the partial backup is removed.
pub fn make(
    source: &BackupSource,
    dest: &Path,
    node: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Manifest, BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists {
            path: dest.display().to_string(),
        });
    }
    let partial = partial_of(dest);
    // A leftover of a backup that was cut short (the node stopped during it).
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(write_err(&partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(write_err(&partial))?;
    let made = build(source, &partial, node, progress).and_then(|m| {
        std::fs::rename(&partial, dest).map_err(write_err(dest))?;
        if let Some(parent) = dest.parent() {
            let _ = fsync(parent);
        }
        Ok(m)
    });
    if made.is_err() {
        if let Err(error) = std::fs::remove_dir_all(&partial) {
            tracing::warn!(path = %partial.display(), %error, "backup: cannot remove the partial backup");
        }
    }
    made
}

fn build(
    source: &BackupSource,
    dir: &Path,
    node: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Manifest, BackupError> {
    let started_ms = Timestamp::now().0;
    // The write-ahead first, then the store (module doc).
    let wal = copy::snapshot(&source.wal)?;
    let history = copy::snapshot(&source.history)?;
    let mut tables = BTreeMap::new();
    let mut wal_entries = 0;
    let counts = copy::copy_wal(&wal, &dir.join(WAL_FILE), BATCH, &mut |n| {
        wal_entries = n;
        progress(n)
    })
    .map_err(|e| in_file(e, dir, WAL_FILE))?;
    drop(wal);
    tables.insert(WAL_FILE.to_owned(), counts);
    let counts = copy::copy_history(&history, &dir.join(HISTORY_FILE), BATCH, &mut |n| {
        progress(wal_entries + n)
    })
    .map_err(|e| in_file(e, dir, HISTORY_FILE))?;
    drop(history);
    tables.insert(HISTORY_FILE.to_owned(), counts);
    let mut files = Vec::new();
    for name in [HISTORY_FILE, WAL_FILE] {
        let path = dir.join(name);
        fsync(&path)?;
        let (sha256, bytes) = sha256_file(&path).map_err(|e| BackupError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        files.push(FileEntry {
            name: name.to_owned(),
            bytes,
            sha256,
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        cistern: env!("CARGO_PKG_VERSION").to_owned(),
        node: node.to_owned(),
        started_ms,
        finished_ms: Timestamp::now().0,
        files,
        tables,
    };
    let path = dir.join(MANIFEST_FILE);
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut f = std::fs::File::create(&path).map_err(write_err(&path))?;
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .map_err(write_err(&path))?;
    fsync(dir)?;
    Ok(manifest)
}

/// A store error while writing `file` of the backup in `dir`, named as such.
fn in_file(e: StoreError, dir: &Path, file: &str) -> BackupError {
    match e {
        StoreError::Invalid(what) => BackupError::Version {
            found: what,
            supported: crate::store::embedded::backup::HISTORY_TABLES.join(", "),
        },
        other => BackupError::Write {
            path: dir.join(file).display().to_string(),
            reason: other.to_string(),
        },
    }
}

/// Whether `dir` is missing or an empty directory.
fn is_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(BackupError::Read {
            path: dir.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Restores the backup in `src` into `data_dir`, which must be missing or empty: verifies the
/// backup (nothing is written if it fails), then copies each file, checking its digest again
/// as it is copied. On a failure on the way, what was written is removed.
pub fn restore(src: &Path, data_dir: &Path) -> Result<Manifest, BackupError> {
    if !is_empty_dir(data_dir)? {
        return Err(BackupError::NotEmpty {
            path: data_dir.display().to_string(),
        });
    }
    let manifest = verify(src)?;
    let created = !data_dir.exists();
    let done = copy_files(src, data_dir, &manifest);
    if done.is_err() {
        if created {
            let _ = std::fs::remove_dir_all(data_dir);
        } else {
            for f in &manifest.files {
                let _ = std::fs::remove_file(data_dir.join(&f.name));
                let _ = std::fs::remove_file(data_dir.join(format!("{}.partial", f.name)));
            }
        }
    }
    done.map(|_| manifest)
}

fn copy_files(src: &Path, data_dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    std::fs::create_dir_all(data_dir).map_err(write_err(data_dir))?;
    for f in &manifest.files {
        let from = src.join(&f.name);
        let part = data_dir.join(format!("{}.partial", f.name));
        std::fs::copy(&from, &part).map_err(write_err(&part))?;
        let (sha, _) = sha256_file(&part).map_err(write_err(&part))?;
        if sha != f.sha256 {
            return Err(BackupError::Corrupt {
                file: f.name.clone(),
                what: "changed while it was restored".into(),
            });
        }
        fsync(&part)?;
        std::fs::rename(&part, data_dir.join(&f.name)).map_err(write_err(data_dir))?;
    }
    fsync(data_dir)
}

/// Records a restore in the restored store's audit log (`restore`, as `user`), so that the
/// node started on it shows where its data came from. Blocking (a command-line step).
pub fn record_restore(
    data_dir: &Path,
    src: &Path,
    manifest: &Manifest,
    user: &str,
) -> Result<(), BackupError> {
    use crate::auth::audit::{AuditEntry, AuditLog};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BackupError::Write {
            path: data_dir.display().to_string(),
            reason: format!("cannot start a runtime: {e}"),
        })?;
    let store = Arc::new(crate::store::embedded::EmbeddedStore::open(data_dir)?);
    rt.block_on(async move {
        let log = AuditLog::stored(
            store,
            tokio::runtime::Handle::current(),
            std::time::Duration::from_secs(3600),
        )
        .await?;
        log.record(AuditEntry::now(
            user,
            "restore",
            data_dir.display().to_string(),
            format!(
                "from {} (node {}, made {} ms, {} bytes)",
                src.display(),
                manifest.node,
                manifest.started_ms,
                manifest.bytes()
            ),
            true,
        ));
        let flushed = log.flush().await;
        log.close().await;
        flushed.map(|_| ()).map_err(BackupError::from)
    })
}

#[cfg(test)]
mod tests;
