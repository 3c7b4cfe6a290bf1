//! A backup's manifest (`manifest.json`): what made it, when, and each file's size and SHA-256
//! (ring), with the entries of every table. Verifying a backup checks all of it before a
//! single byte is restored: the format and its version, that the files are exactly the ones
//! a backup holds, their sizes and digests, and that every table is one this version knows.

use super::BackupError;
use crate::store::embedded::backup::{
    table_counts, TableCounts, HISTORY_FILE, HISTORY_TABLES, WAL_FILE, WAL_TABLES,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// What `format` says.
pub const FORMAT: &str = "cistern-backup";
/// The layout this binary writes and reads.
pub const VERSION: u32 = 1;
/// The files of a backup, besides the manifest.
pub const FILES: &[&str] = &[HISTORY_FILE, WAL_FILE];

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this binary.
    pub version: u32,
    /// The cistern version that made it.
    pub cistern: String,
    /// The node that made it.
    pub node: String,
    /// When the copy began (ms since the epoch): every sample acknowledged before it is in it.
    pub started_ms: i64,
    pub finished_ms: i64,
    pub files: Vec<FileEntry>,
    /// Entries per table, per file.
    pub tables: BTreeMap<String, TableCounts>,
}

impl Manifest {
    /// Bytes of the backup's files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// The entries of `table` in `file` (0 when absent).
    pub fn count(&self, file: &str, table: &str) -> u64 {
        self.tables
            .get(file)
            .and_then(|t| t.get(table))
            .copied()
            .unwrap_or(0)
    }
}

/// SHA-256 of a file (lower-case hex) and its length, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<(String, u64), std::io::Error> {
    let mut file = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex(ctx.finish().as_ref()), len))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and checks `dir`'s manifest, then every file against it (see the module doc).
pub fn verify(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BackupError::NotABackup {
            path: dir.display().to_string(),
            why: format!("no {MANIFEST_FILE}"),
        },
        _ => BackupError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
    })?;
    let corrupt = |what: String| BackupError::Corrupt {
        file: MANIFEST_FILE.to_owned(),
        what,
    };
    // Format and version first, so that a newer layout is named as such rather than as a
    // manifest that does not parse.
    let head: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    if head["format"].as_str() != Some(FORMAT) {
        return Err(BackupError::NotABackup {
            path: dir.display().to_string(),
            why: format!("{MANIFEST_FILE} is not a {FORMAT} manifest"),
        });
    }
    let version = head["version"].as_u64().unwrap_or(0);
    if version != u64::from(VERSION) {
        return Err(BackupError::Version {
            found: format!("format version {version}"),
            supported: format!("format version {VERSION}"),
        });
    }
    let manifest: Manifest =
        serde_json::from_value(head).map_err(|e| corrupt(format!("unexpected shape: {e}")))?;
    let mut names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = FILES.to_vec();
    expected.sort_unstable();
    if names != expected {
        return Err(corrupt(format!(
            "lists files {names:?}, a backup holds {expected:?}"
        )));
    }
    for (file, known) in [(HISTORY_FILE, HISTORY_TABLES), (WAL_FILE, WAL_TABLES)] {
        let unknown: Vec<&String> = manifest
            .tables
            .get(file)
            .into_iter()
            .flat_map(|t| t.keys())
            .filter(|t| !known.contains(&t.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(BackupError::Version {
                found: format!("{file} tables {unknown:?} (cistern {})", manifest.cistern),
                supported: format!("{known:?} (cistern {})", env!("CARGO_PKG_VERSION")),
            });
        }
    }
    for f in &manifest.files {
        let path = dir.join(&f.name);
        let (sha, len) = sha256_file(&path).map_err(|e| BackupError::Corrupt {
            file: f.name.clone(),
            what: format!("cannot be read: {e}"),
        })?;
        if len != f.bytes {
            return Err(BackupError::Corrupt {
                file: f.name.clone(),
                what: format!("{len} bytes, the manifest says {} (truncated?)", f.bytes),
            });
        }
        if sha != f.sha256 {
            return Err(BackupError::Corrupt {
                file: f.name.clone(),
                what: "its SHA-256 differs from the manifest's".into(),
            });
        }
        // The digest matched: the tables must be there with the entries the manifest counts.
        let counted = table_counts(&path).map_err(|e| BackupError::Corrupt {
            file: f.name.clone(),
            what: e.to_string(),
        })?;
        for (table, n) in manifest.tables.get(&f.name).into_iter().flatten() {
            let found = counted.get(table).copied().flatten().unwrap_or(0);
            if found != *n {
                return Err(BackupError::Corrupt {
                    file: f.name.clone(),
                    what: format!("table {table} holds {found} entries, the manifest says {n}"),
                });
            }
        }
    }
    Ok(manifest)
}
