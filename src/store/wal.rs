//! The historian's write-ahead log and disk spill: a redb file of its own (`wal.redb` in the
//! data directory), always local, whichever backend holds the chunks.
//!
//! Each historian flush appends one blob (every sample it accepted since the last flush) under
//! the next sequence number, in one durable commit; sealing the samples into chunks in the
//! store removes the blobs they cover. While the store is down the blobs simply stay: the log
//! *is* the spill, bounded by the disk, drained in order when the store comes back.

use super::embedded::{io, open_database};
use super::StoreError;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("wal_v3");

/// The write-ahead log (blocking calls: the historian's writer thread owns it).
#[derive(Debug)]
pub struct Wal {
    db: Arc<Database>,
    /// Size of each blob in the log, by sequence number.
    sizes: BTreeMap<u64, u64>,
    bytes: u64,
}

impl Wal {
    /// Opens (or creates) `wal.redb` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = open_database(&dir.join("wal.redb"), 16 << 20)?;
        let tx = db.begin_write().map_err(io)?;
        tx.open_table(LOG).map_err(io)?;
        tx.commit().map_err(io)?;
        let mut sizes = BTreeMap::new();
        {
            let tx = db.begin_read().map_err(io)?;
            let log = tx.open_table(LOG).map_err(io)?;
            for entry in log.iter().map_err(io)? {
                let (k, v) = entry.map_err(io)?;
                sizes.insert(k.value(), v.value().len() as u64);
            }
        }
        let bytes = sizes.values().sum();
        Ok(Self {
            db: Arc::new(db),
            sizes,
            bytes,
        })
    }

    /// The redb database, for a backup's consistent copy (`store::embedded::backup`).
    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// Appends a blob under `seq` (greater than every sequence number in the log), durably.
    pub fn append(&mut self, seq: u64, blob: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(io)?;
        tx.open_table(LOG)
            .map_err(io)?
            .insert(seq, blob)
            .map_err(io)?;
        tx.commit().map_err(io)?;
        self.sizes.insert(seq, blob.len() as u64);
        self.bytes += blob.len() as u64;
        Ok(())
    }

    /// Removes every blob up to and including `seq`.
    pub fn drop_through(&mut self, seq: u64) -> Result<(), StoreError> {
        if self.sizes.range(..=seq).next().is_none() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(io)?;
        tx.open_table(LOG)
            .map_err(io)?
            .retain_in(..=seq, |_, _| false)
            .map_err(io)?;
        tx.commit().map_err(io)?;
        let kept = self.sizes.split_off(&(seq.saturating_add(1)));
        let gone = std::mem::replace(&mut self.sizes, kept);
        self.bytes -= gone.values().sum::<u64>();
        Ok(())
    }

    /// Blobs from `from` on, in sequence order, until about `max_bytes` (at least one).
    pub fn read(&self, from: u64, max_bytes: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let log = tx.open_table(LOG).map_err(io)?;
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in log.range(from..).map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            bytes += v.value().len() as u64;
            out.push((k.value(), v.value().to_vec()));
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// The sequence numbers in the log, oldest first.
    pub fn first_seq(&self) -> Option<u64> {
        self.sizes.keys().next().copied()
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.sizes.keys().next_back().copied()
    }

    /// Blobs in the log.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Bytes of the blobs in the log.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of the blobs from `from` on.
    pub fn bytes_from(&self, from: u64) -> u64 {
        self.sizes.range(from..).map(|(_, b)| b).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_append_read_in_order_drop_and_survive_reopening() {
        let d = std::env::temp_dir().join(format!("cistern-wal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        {
            let mut wal = Wal::open(&d).unwrap();
            assert!(wal.is_empty());
            for seq in 0..10u64 {
                wal.append(seq, &[seq as u8; 100]).unwrap();
            }
            assert_eq!((wal.len(), wal.bytes()), (10, 1000));
            let some = wal.read(3, 250).unwrap();
            assert_eq!(some.iter().map(|b| b.0).collect::<Vec<_>>(), [3, 4, 5]);
            assert_eq!(some[0].1, vec![3u8; 100]);
            wal.drop_through(4).unwrap();
            assert_eq!((wal.first_seq(), wal.last_seq()), (Some(5), Some(9)));
            assert_eq!(wal.bytes(), 500);
            assert_eq!(wal.bytes_from(8), 200);
        }
        let wal = Wal::open(&d).unwrap();
        assert_eq!((wal.len(), wal.bytes(), wal.first_seq()), (5, 500, Some(5)));
        assert_eq!(wal.read(0, u64::MAX).unwrap().len(), 5);
    }
}
