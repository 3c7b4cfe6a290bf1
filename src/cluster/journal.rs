//! The node's ownership journal (`cluster-journal.jsonl` in the store's data directory): one
//! JSON line per claim, activation, drain, release and fencing, written straight to the file
//! (it survives a `kill -9`), so that who acted for which shard, and when, can be checked
//! afterwards — `cistern bench failover` reads the journals of every node to prove that no two
//! nodes ever acted for one shard at once.

use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// What happened to a shard here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalEvent {
    /// The claim succeeded: the node acts for the shard from now.
    Acquired,
    /// The shard's rooms run and its first sample was applied.
    Active,
    /// A planned move: the shard is being stopped here.
    Draining,
    /// The claim was given back: the node acts no more.
    Released,
    /// The lease could not be renewed in time (or the claim was lost): the node stopped acting.
    Fenced,
}

#[derive(Serialize)]
struct Line<'a> {
    at_ms: i64,
    node: &'a str,
    shard: u32,
    epoch: i64,
    event: JournalEvent,
}

/// An append-only journal; without a path it only logs.
#[derive(Debug)]
pub struct Journal {
    node: String,
    file: Option<Mutex<std::fs::File>>,
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Journal {
    /// Opens (appends to) `path`.
    pub fn open(node: &str, path: Option<PathBuf>) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        Ok(Self {
            node: node.to_owned(),
            file,
        })
    }

    /// Records `event` for `shard` as of `at`.
    pub fn write(&self, at: SystemTime, shard: u32, epoch: i64, event: JournalEvent) {
        tracing::info!(shard, epoch, event = ?event, "shard ownership");
        let Some(file) = &self.file else { return };
        let line = Line {
            at_ms: unix_ms(at),
            node: &self.node,
            shard,
            epoch,
            event,
        };
        let Ok(mut text) = serde_json::to_vec(&line) else {
            return;
        };
        text.push(b'\n');
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = f.write_all(&text) {
            tracing::warn!(%error, "cannot write the cluster journal");
        }
    }
}
