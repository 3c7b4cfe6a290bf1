//! `cistern audit verify|export`: the audit log's chain checked in a stopped node's data
//! directory (`--data`), in an exported JSON-lines copy (`--file`), or by the running node
//! (`GET /api/v1/audit/verify`); the log exported through the running node's API (so the
//! export is audited there).

use super::audit::{verify_store, AuditEntry};
use super::audit_chain::{Verifier, VerifyReport};
use crate::business::assets::archive::client::{ClientError, Remote};
use crate::store::embedded::EmbeddedStore;
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `cistern audit verify` checks.
#[derive(Debug, Clone)]
pub enum VerifyTarget {
    /// A stopped node's data directory (`[store] data_dir`, embedded store).
    Data(PathBuf),
    /// A JSON-lines export (`GET /api/v1/audit/export?format=jsonl`).
    File(PathBuf),
    /// The running node, asked over its API.
    Server(Remote),
}

/// Why a check could not be made (not: why a chain is broken — that is the report).
#[derive(Debug, thiserror::Error)]
pub enum AuditCliError {
    #[error("{0} holds no store (history.redb): give the node's [store] data_dir")]
    NoStore(String),
    #[error("cannot open the store in {dir}: {source} (is the node running? stop it, or ask it with --url)")]
    Open { dir: String, source: StoreError },
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the node's answer is not a verify report: {0}")]
    Answer(String),
    #[error("cannot start a runtime: {0}")]
    Runtime(std::io::Error),
}

/// Walks the chain of `target`.
pub fn verify(target: &VerifyTarget) -> Result<VerifyReport, AuditCliError> {
    match target {
        VerifyTarget::Data(dir) => verify_data(dir),
        VerifyTarget::File(path) => verify_file(path),
        VerifyTarget::Server(remote) => {
            let body = remote.get_json("/api/v1/audit/verify")?;
            serde_json::from_value(body["report"].clone())
                .map_err(|e| AuditCliError::Answer(e.to_string()))
        }
    }
}

fn verify_data(dir: &Path) -> Result<VerifyReport, AuditCliError> {
    if !dir.join("history.redb").is_file() {
        return Err(AuditCliError::NoStore(dir.display().to_string()));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(AuditCliError::Runtime)?;
    let store: Arc<dyn Store> =
        Arc::new(
            EmbeddedStore::open(dir).map_err(|source| AuditCliError::Open {
                dir: dir.display().to_string(),
                source,
            })?,
        );
    let io = rt.handle().clone();
    Ok(rt.block_on(verify_store(&store, &io))?)
}

/// An exported copy has no chain head beside it: its newest entries' removal goes unseen.
fn verify_file(path: &Path) -> Result<VerifyReport, AuditCliError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuditCliError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut v: Option<Verifier> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<AuditEntry>(line) {
            Ok(e) => {
                // An export of a time range starts anywhere in the chain: trust its first
                // entry's link, check everything after it.
                let v = v.get_or_insert_with(|| match e.seq {
                    Some(seq) if seq > 0 => Verifier::after(seq - 1, &e.prev),
                    _ => Verifier::new(),
                });
                v.push(e.at_ms, &e);
            }
            Err(_) => v.get_or_insert_with(Verifier::new).unreadable(0),
        }
    }
    Ok(v.unwrap_or_default().finish(None))
}

/// Parses a `--since`/`--until`: ms since the epoch, or an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{s:?} is neither ms since the epoch nor an RFC 3339 time: {e}"))?;
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| format!("{s:?} is before 1970"))
}
