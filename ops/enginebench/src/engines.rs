//! The three engines behind one small interface. Each commit below is durable (fsync'd)
//! before it returns.

use anyhow::{bail, Result};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Redb,
    /// redb, chunks keyed (hour bucket, point, start).
    RedbTimeFirst,
    /// redb, chunks keyed (2-minute bucket, point, start): each seal is a new key range.
    RedbTimeFirst2m,
    /// redb, one value per (hour bucket, room, start) holding the room's chunks.
    RedbRoom,
    Fjall,
    Sled,
}

impl std::str::FromStr for EngineKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "redb" => Self::Redb,
            "redb-timefirst" => Self::RedbTimeFirst,
            "redb-timefirst-2m" => Self::RedbTimeFirst2m,
            "redb-room" => Self::RedbRoom,
            "fjall" => Self::Fjall,
            "sled" => Self::Sled,
            other => bail!(
                "unknown engine {other} (redb, redb-timefirst, redb-timefirst-2m, redb-room, fjall, sled)"
            ),
        })
    }
}

/// Page/block cache given to every engine (the size Cistern gives redb).
pub const CACHE_BYTES: u64 = 64 << 20;

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Redb => "redb",
            Self::RedbTimeFirst => "redb-timefirst",
            Self::RedbTimeFirst2m => "redb-timefirst-2m",
            Self::RedbRoom => "redb-room",
            Self::Fjall => "fjall",
            Self::Sled => "sled",
        }
    }

    /// The durability setting used, as stated in RESULTS.md.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Redb => "redb 4.x, one WriteTransaction per commit with Durability::Immediate (the default; 1-phase commit + fsync), quick_repair off (default), cache 64 MiB",
            Self::RedbTimeFirst => "redb 4.x as `redb`, chunks table keyed (hour bucket i64 = start.div_euclid(3_600_000), point &str, start i64); a query does one range scan per hour bucket plus one reverse lookup in the bucket before `from` (lookback)",
            Self::RedbTimeFirst2m => "redb 4.x as `redb`, chunks table keyed (2-minute bucket i64 = start.div_euclid(120_000), point &str, start i64), so every seal is a new key range at the end of the tree; a query does one range scan per 2-minute bucket (720) plus one lookback lookup",
            Self::RedbRoom => "redb 4.x as `redb`, one value per (hour bucket i64, room &str, start i64) holding the chunks of the room's points (u16 length per slot, then the chunks), slots from a point -> (room, slot) table written once per new point; a query does one range scan per hour bucket plus one lookback lookup and slices its point out of each value",
            Self::Fjall => "fjall 3.x, one OwnedWriteBatch per commit with .durability(Some(PersistMode::SyncAll)) (journal fsync before commit returns), cache 64 MiB, other options default",
            Self::Sled => "sled 0.34, one Batch per commit via Tree::apply_batch then Db::flush() (fsync), flush_every_ms(None), cache 64 MiB, Mode::LowSpace (default)",
        }
    }
}

pub trait Engine {
    /// One durable commit holding one write-ahead blob.
    fn wal_commit(&mut self, seq: u64, blob: &[u8]) -> Result<()>;
    /// One durable transaction: chunk `i` (bytes `i*size..`) of every point at `start`, and
    /// the removal of the write-ahead blobs `drop`.
    fn seal(
        &mut self,
        points: &[String],
        start: i64,
        chunks: &[u8],
        size: usize,
        drop: &[u64],
    ) -> Result<()>;
    /// Every chunk of `point` with start in `from..=to`: (count, bytes), values copied out.
    fn query(&self, point: &str, from: i64, to: i64) -> Result<(usize, usize)>;
    /// Compacts where the engine offers it, then closes. Returns what was done.
    fn close_compact(self: Box<Self>) -> Result<String>;
    fn max_wal_seq(&self) -> Result<Option<u64>>;
    fn wal_present(&self, seq: u64) -> Result<bool>;
}

pub fn open_engine(kind: EngineKind, dir: &Path) -> Result<Box<dyn Engine>> {
    std::fs::create_dir_all(dir)?;
    Ok(match kind {
        EngineKind::Redb => Box::new(RedbEngine::open(dir, RedbLayout::PointFirst)?),
        EngineKind::RedbTimeFirst => {
            Box::new(RedbEngine::open(dir, RedbLayout::TimeFirst(HOUR_MS))?)
        }
        EngineKind::RedbTimeFirst2m => {
            Box::new(RedbEngine::open(dir, RedbLayout::TimeFirst(TWO_MIN_MS))?)
        }
        EngineKind::RedbRoom => Box::new(RedbEngine::open(dir, RedbLayout::Room(HOUR_MS))?),
        EngineKind::Fjall => Box::new(FjallEngine::open(dir)?),
        EngineKind::Sled => Box::new(SledEngine::open(dir)?),
    })
}

/// Byte key for the LSM engines: point id, a 0 separator, start i64 big-endian with the sign
/// bit flipped (so that byte order is numeric order).
fn chunk_key(point: &str, start: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(point.len() + 9);
    k.extend_from_slice(point.as_bytes());
    k.push(0);
    k.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    k
}

// ---------------------------------------------------------------- redb

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// The same tables as src/store/embedded.rs.
const CHUNKS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("chunks_v1");
const WAL: TableDefinition<u64, &[u8]> = TableDefinition::new("wal_v2");
/// Time-first layouts: (bucket, point, start) -> chunk.
const CHUNKS_TF: TableDefinition<(i64, &str, i64), &[u8]> = TableDefinition::new("chunks_tf");
/// Room layout: (bucket, room, start) -> the room's chunks; point -> slot in its room.
const ROOM_CHUNKS: TableDefinition<(i64, &str, i64), &[u8]> = TableDefinition::new("room_chunks");
const SLOTS: TableDefinition<&str, u32> = TableDefinition::new("slots");

pub const HOUR_MS: i64 = 3_600_000;
pub const TWO_MIN_MS: i64 = 120_000;

#[derive(Debug, Clone, Copy)]
pub enum RedbLayout {
    /// (point, start): what Cistern has today.
    PointFirst,
    /// (start.div_euclid(bucket), point, start).
    TimeFirst(i64),
    /// (start.div_euclid(bucket), room, start) -> all the room's chunks of one seal.
    Room(i64),
}

/// The room of a point id `XM-0001/P1.frequency` is `XM-0001`.
fn room_of(point: &str) -> &str {
    point.split_once('/').map_or(point, |(r, _)| r)
}

/// Room value: u16 slot count, u16 length per slot (0 = no chunk), then the chunks in slot
/// order. Returns a copy of `slot`'s chunk, if any.
fn room_value_chunk(v: &[u8], slot: u32) -> Option<Vec<u8>> {
    let n = u16::from_le_bytes([v[0], v[1]]) as usize;
    let slot = slot as usize;
    if slot >= n {
        return None;
    }
    let len_at = |i: usize| u16::from_le_bytes([v[2 + 2 * i], v[3 + 2 * i]]) as usize;
    let mut off = 2 + 2 * n;
    for i in 0..slot {
        off += len_at(i);
    }
    let len = len_at(slot);
    (len > 0).then(|| v[off..off + len].to_vec())
}

pub struct RedbEngine {
    db: Database,
    layout: RedbLayout,
    /// Room layout: point -> slot, and slots used per room (loaded at open).
    slots: std::collections::HashMap<String, u32>,
    room_slots: std::collections::HashMap<String, u32>,
}

impl RedbEngine {
    fn open(dir: &Path, layout: RedbLayout) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES as usize)
            .create(dir.join("history.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(WAL)?;
        match layout {
            RedbLayout::PointFirst => drop(tx.open_table(CHUNKS)?),
            RedbLayout::TimeFirst(_) => drop(tx.open_table(CHUNKS_TF)?),
            RedbLayout::Room(_) => {
                tx.open_table(ROOM_CHUNKS)?;
                tx.open_table(SLOTS)?;
            }
        }
        tx.commit()?;
        let mut slots = std::collections::HashMap::new();
        let mut room_slots = std::collections::HashMap::new();
        if let RedbLayout::Room(_) = layout {
            let rx = db.begin_read()?;
            let t = rx.open_table(SLOTS)?;
            for e in t.iter()? {
                let (k, v) = e?;
                let (p, s) = (k.value().to_string(), v.value());
                let n = room_slots.entry(room_of(&p).to_string()).or_insert(0u32);
                *n = (*n).max(s + 1);
                slots.insert(p, s);
            }
        }
        Ok(Self {
            db,
            layout,
            slots,
            room_slots,
        })
    }

    fn begin(&self) -> Result<redb::WriteTransaction> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        Ok(tx)
    }
}

impl Engine for RedbEngine {
    fn wal_commit(&mut self, seq: u64, blob: &[u8]) -> Result<()> {
        let tx = self.begin()?;
        tx.open_table(WAL)?.insert(seq, blob)?;
        tx.commit()?;
        Ok(())
    }

    fn seal(
        &mut self,
        points: &[String],
        start: i64,
        chunks: &[u8],
        size: usize,
        drop: &[u64],
    ) -> Result<()> {
        let tx = self.begin()?;
        {
            let mut wal = tx.open_table(WAL)?;
            for s in drop {
                wal.remove(*s)?;
            }
            match self.layout {
                RedbLayout::PointFirst => {
                    let mut t = tx.open_table(CHUNKS)?;
                    for (i, p) in points.iter().enumerate() {
                        t.insert((p.as_str(), start), &chunks[i * size..(i + 1) * size])?;
                    }
                }
                RedbLayout::TimeFirst(h) => {
                    let b = start.div_euclid(h);
                    let mut t = tx.open_table(CHUNKS_TF)?;
                    for (i, p) in points.iter().enumerate() {
                        t.insert((b, p.as_str(), start), &chunks[i * size..(i + 1) * size])?;
                    }
                }
                RedbLayout::Room(h) => {
                    let b = start.div_euclid(h);
                    // Group the chunks by room, assigning slots to new points.
                    let mut rooms: std::collections::BTreeMap<&str, Vec<(u32, &[u8])>> =
                        Default::default();
                    let mut slot_t = tx.open_table(SLOTS)?;
                    for (i, p) in points.iter().enumerate() {
                        let room = room_of(p);
                        let slot = match self.slots.get(p.as_str()) {
                            Some(s) => *s,
                            None => {
                                let n = self.room_slots.entry(room.to_string()).or_insert(0);
                                let s = *n;
                                *n += 1;
                                slot_t.insert(p.as_str(), s)?;
                                self.slots.insert(p.clone(), s);
                                s
                            }
                        };
                        rooms
                            .entry(room)
                            .or_default()
                            .push((slot, &chunks[i * size..(i + 1) * size]));
                    }
                    let mut t = tx.open_table(ROOM_CHUNKS)?;
                    let mut v = Vec::new();
                    for (room, mut cs) in rooms {
                        let n = self.room_slots[room] as usize;
                        cs.sort_unstable_by_key(|(s, _)| *s);
                        let mut lens = vec![0u16; n];
                        for (s, c) in &cs {
                            lens[*s as usize] = c.len() as u16;
                        }
                        v.clear();
                        v.extend_from_slice(&(n as u16).to_le_bytes());
                        for l in lens {
                            v.extend_from_slice(&l.to_le_bytes());
                        }
                        for (_, c) in &cs {
                            v.extend_from_slice(c);
                        }
                        t.insert((b, room, start), v.as_slice())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn query(&self, point: &str, from: i64, to: i64) -> Result<(usize, usize)> {
        let tx = self.db.begin_read()?;
        let mut out: Vec<(i64, Vec<u8>)> = Vec::new();
        match self.layout {
            RedbLayout::PointFirst => {
                let t = tx.open_table(CHUNKS)?;
                for e in t.range((point, from)..=(point, to))? {
                    let (k, v) = e?;
                    out.push((k.value().1, v.value().to_vec()));
                }
            }
            RedbLayout::TimeFirst(h) => {
                let t = tx.open_table(CHUNKS_TF)?;
                let (bf, bt) = (from.div_euclid(h), to.div_euclid(h));
                // Lookback: the point's last chunk in the bucket before `from` (copied, not
                // counted: the callers count chunks starting in from..=to).
                let mut lookback = None;
                if let Some(e) = t
                    .range((bf - 1, point, i64::MIN)..(bf - 1, point, from))?
                    .next_back()
                {
                    let (k, v) = e?;
                    lookback = Some((k.value().2, v.value().to_vec()));
                }
                std::hint::black_box(&lookback);
                for b in bf..=bt {
                    for e in t.range((b, point, from)..=(b, point, to))? {
                        let (k, v) = e?;
                        out.push((k.value().2, v.value().to_vec()));
                    }
                }
            }
            RedbLayout::Room(h) => {
                let Some(slot) = tx.open_table(SLOTS)?.get(point)?.map(|g| g.value()) else {
                    return Ok((0, 0));
                };
                let room = room_of(point);
                let t = tx.open_table(ROOM_CHUNKS)?;
                let (bf, bt) = (from.div_euclid(h), to.div_euclid(h));
                let mut lookback = None;
                if let Some(e) = t
                    .range((bf - 1, room, i64::MIN)..(bf - 1, room, from))?
                    .next_back()
                {
                    let (k, v) = e?;
                    lookback = room_value_chunk(v.value(), slot).map(|c| (k.value().2, c));
                }
                std::hint::black_box(&lookback);
                for b in bf..=bt {
                    for e in t.range((b, room, from)..=(b, room, to))? {
                        let (k, v) = e?;
                        if let Some(c) = room_value_chunk(v.value(), slot) {
                            out.push((k.value().2, c));
                        }
                    }
                }
            }
        }
        Ok((out.len(), out.iter().map(|(_, v)| v.len()).sum()))
    }

    fn close_compact(mut self: Box<Self>) -> Result<String> {
        let mut passes = 0;
        while self.db.compact()? {
            passes += 1;
        }
        Ok(format!(
            "Database::compact() until it reports nothing left, {passes} passes"
        ))
    }

    fn max_wal_seq(&self) -> Result<Option<u64>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(WAL)?;
        let last = t.last()?.map(|(k, _)| k.value());
        Ok(last)
    }

    fn wal_present(&self, seq: u64) -> Result<bool> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(WAL)?;
        Ok(t.get(seq)?.is_some())
    }
}

// ---------------------------------------------------------------- fjall

use fjall::{KeyspaceCreateOptions, PersistMode};

pub struct FjallEngine {
    db: fjall::Database,
    wal: fjall::Keyspace,
    chunks: fjall::Keyspace,
}

impl FjallEngine {
    fn open(dir: &Path) -> Result<Self> {
        let db = fjall::Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .open()?;
        let wal = db.keyspace("wal", KeyspaceCreateOptions::default)?;
        let chunks = db.keyspace("chunks", KeyspaceCreateOptions::default)?;
        Ok(Self { db, wal, chunks })
    }

    fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(Some(PersistMode::SyncAll))
    }
}

impl Engine for FjallEngine {
    fn wal_commit(&mut self, seq: u64, blob: &[u8]) -> Result<()> {
        let mut b = self.batch();
        b.insert(&self.wal, seq.to_be_bytes(), blob);
        b.commit()?;
        Ok(())
    }

    fn seal(
        &mut self,
        points: &[String],
        start: i64,
        chunks: &[u8],
        size: usize,
        drop: &[u64],
    ) -> Result<()> {
        let mut b = self.batch();
        for s in drop {
            b.remove(&self.wal, s.to_be_bytes());
        }
        for (i, p) in points.iter().enumerate() {
            b.insert(
                &self.chunks,
                chunk_key(p, start),
                &chunks[i * size..(i + 1) * size],
            );
        }
        b.commit()?;
        Ok(())
    }

    fn query(&self, point: &str, from: i64, to: i64) -> Result<(usize, usize)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for g in self
            .chunks
            .range(chunk_key(point, from)..=chunk_key(point, to))
        {
            let (k, v) = g.into_inner()?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok((out.len(), out.iter().map(|(_, v)| v.len()).sum()))
    }

    fn close_compact(self: Box<Self>) -> Result<String> {
        // Flush memtables to tables, then a major compaction of each keyspace (doc-hidden
        // API in 3.x), then close (drop persists the journal).
        self.wal.rotate_memtable_and_wait()?;
        self.chunks.rotate_memtable_and_wait()?;
        self.wal.major_compact()?;
        self.chunks.major_compact()?;
        self.db.persist(PersistMode::SyncAll)?;
        let tables = self.chunks.table_count();
        drop(self);
        Ok(format!(
            "rotate_memtable_and_wait + major_compact on both keyspaces, chunks now in {tables} tables"
        ))
    }

    fn max_wal_seq(&self) -> Result<Option<u64>> {
        match self.wal.last_key_value() {
            None => Ok(None),
            Some(g) => {
                let k = g.key()?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&k[..8]);
                Ok(Some(u64::from_be_bytes(b)))
            }
        }
    }

    fn wal_present(&self, seq: u64) -> Result<bool> {
        Ok(self.wal.contains_key(seq.to_be_bytes())?)
    }
}

// ---------------------------------------------------------------- sled

/// sled 0.34: one tree, prefix 'w' for write-ahead blobs and 'c' for chunks, so that a seal
/// (chunks + WAL removal) is one atomic `apply_batch`.
pub struct SledEngine {
    db: sled::Db,
}

fn sled_wal_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'w');
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn sled_chunk_key(point: &str, start: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(point.len() + 10);
    k.push(b'c');
    k.extend_from_slice(&chunk_key(point, start));
    k
}

impl SledEngine {
    fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(None)
            .open()?;
        Ok(Self { db })
    }
}

impl Engine for SledEngine {
    fn wal_commit(&mut self, seq: u64, blob: &[u8]) -> Result<()> {
        let mut b = sled::Batch::default();
        b.insert(sled_wal_key(seq), blob);
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn seal(
        &mut self,
        points: &[String],
        start: i64,
        chunks: &[u8],
        size: usize,
        drop: &[u64],
    ) -> Result<()> {
        let mut b = sled::Batch::default();
        for s in drop {
            b.remove(sled_wal_key(*s));
        }
        for (i, p) in points.iter().enumerate() {
            b.insert(sled_chunk_key(p, start), &chunks[i * size..(i + 1) * size]);
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn query(&self, point: &str, from: i64, to: i64) -> Result<(usize, usize)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for e in self
            .db
            .range(sled_chunk_key(point, from)..=sled_chunk_key(point, to))
        {
            let (k, v) = e?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok((out.len(), out.iter().map(|(_, v)| v.len()).sum()))
    }

    fn close_compact(self: Box<Self>) -> Result<String> {
        self.db.flush()?;
        drop(self);
        Ok("flush + drop (sled 0.34 has no manual compaction)".into())
    }

    fn max_wal_seq(&self) -> Result<Option<u64>> {
        let mut it = self.db.scan_prefix(b"w");
        match it.next_back() {
            None => Ok(None),
            Some(e) => {
                let (k, _) = e?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&k[1..9]);
                Ok(Some(u64::from_be_bytes(b)))
            }
        }
    }

    fn wal_present(&self, seq: u64) -> Result<bool> {
        Ok(self.db.contains_key(sled_wal_key(seq))?)
    }
}
