//! Remote parameters: what the platform writes to pump-room controllers over Modbus TCP —
//! the tanks' fill plans (peak-shaving, issue 7) and operators' set-points.
//!
//! Why it is apart from the pollers: a write is a request with an answer for its caller (the
//! district planner, an operator's REST call), not a stream; and it must be verified. Every
//! write is one write-multiple-registers request per contiguous block (the plans of adjacent
//! tanks merge), then a read of the same registers: the write counts as done only when they
//! read back identical (a controller that clamps or ignores a value is caught here).
//!
//! Link discipline is the pollers': every request and connection attempt has a timeout; after
//! a timeout or a transport error the context is dropped (a late answer would be taken for the
//! next request's) and the room's link backs off (exponential, jittered, reset by a verified
//! write); while it backs off, writes fail at once with the time left. A Modbus exception is
//! the device's answer, not a link failure: the context is kept. One writer connection per
//! room, separate from the poller's, held between writes.
//!
//! Every write, whatever its outcome, is audited through [`AuditPort`] (who, what, the values,
//! the outcome) and counted in `cistern_field_writes_total{kind, outcome}`.

use crate::ingest::modbus::{Backoff, ModbusConfig};
use cistern_actors::ports::{
    AuditPort, AuditRecord, PlanDelivery, PlanDispatch, PlanPort, PortFuture,
};
use cistern_schemas::fill_plan::{FillPlanError, PlanImage};
use cistern_schemas::inventory::{Inventory, ModbusSource};
use cistern_schemas::modbus::{Encoding, Mapping, ProfileError, ProfileSet, RoomShape};
use cistern_schemas::{DeviceId, DeviceUnit, PointId, RoomId};
use prometheus::IntCounterVec;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_modbus::client::{tcp, Context, Reader, Writer};
use tokio_modbus::Slave;
use tracing::{debug, warn};

/// Most registers one write-multiple-registers request carries (Modbus, function 0x10).
const MAX_REGISTERS_PER_WRITE: usize = 123;

/// Why a write did not take effect. Each names the room (or tank, or point) it was for.
/// `Clone`: one failed request fails every plan it carried.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    #[error("room {room} is not polled over Modbus: it takes no remote writes")]
    NotModbus { room: RoomId },
    #[error("unknown room {room}")]
    UnknownRoom { room: RoomId },
    #[error("{point}: the room's profile {profile} has no such point")]
    UnknownPoint { point: PointId, profile: String },
    #[error("{point}: the room's profile {profile} does not mark it writable")]
    NotWritable { point: PointId, profile: String },
    #[error("{point}: {value} is outside the writable range {min}..={max}")]
    OutOfRange {
        point: PointId,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("tank {tank}: the controller's profile {profile} has no plan registers")]
    NoPlanRegisters { tank: DeviceId, profile: String },
    #[error("tank {tank}: {source}")]
    Plan {
        tank: DeviceId,
        source: FillPlanError,
    },
    #[error("room {room}: profile: {source}")]
    Profile {
        room: RoomId,
        source: Arc<ProfileError>,
    },
    /// In a cluster: the room is not run by this node (its shard is another node's, or this
    /// node fenced itself): nothing is written.
    #[error("room {room} is not run by this node: nothing written")]
    NotOwned { room: RoomId },
    #[error("room {room}: the link is backing off after failures; next attempt in {left:?}")]
    BackingOff { room: RoomId, left: Duration },
    #[error("room {room}: connecting to {address} timed out after {after:?}")]
    ConnectTimeout {
        room: RoomId,
        address: String,
        after: Duration,
    },
    #[error("room {room}: cannot connect to {address}: {source}")]
    Connect {
        room: RoomId,
        address: String,
        source: Arc<std::io::Error>,
    },
    #[error("room {room}: {op} of holding {start}..{end} timed out after {after:?}")]
    Timeout {
        room: RoomId,
        op: &'static str,
        start: u16,
        end: u32,
        after: Duration,
    },
    #[error("room {room}: {op} of holding {start}..{end} failed: {source}")]
    Transport {
        room: RoomId,
        op: &'static str,
        start: u16,
        end: u32,
        source: Arc<tokio_modbus::Error>,
    },
    #[error("room {room}: the controller refused the {op} of holding {start}..{end}: {code}")]
    Exception {
        room: RoomId,
        op: &'static str,
        start: u16,
        end: u32,
        code: String,
    },
    #[error(
        "room {room}: holding {start}..{end} read back {read:?} after writing {wrote:?}: the \
         controller did not take the write"
    )]
    ReadBack {
        room: RoomId,
        start: u16,
        end: u32,
        wrote: Vec<u16>,
        read: Vec<u16>,
    },
}

impl WriteError {
    /// The outcome label of `cistern_field_writes_total` (a bounded set).
    pub fn outcome(&self) -> &'static str {
        match self {
            WriteError::ReadBack { .. } => "refused_by_read_back",
            WriteError::Timeout { .. } | WriteError::ConnectTimeout { .. } => "timeout",
            WriteError::Exception { .. } => "exception",
            WriteError::Connect { .. }
            | WriteError::Transport { .. }
            | WriteError::BackingOff { .. } => "unreachable",
            WriteError::NotOwned { .. } => "not_owned",
            _ => "rejected",
        }
    }

    /// Whether the request itself was wrong (the caller's fault) rather than the field.
    pub fn is_bad_request(&self) -> bool {
        self.outcome() == "rejected"
    }
}

/// The writer's counters.
#[derive(Clone, Debug)]
pub struct WriteMetrics {
    writes: IntCounterVec,
    requests: prometheus::IntCounter,
}

impl WriteMetrics {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let writes = IntCounterVec::new(
            prometheus::Opts::new(
                "cistern_field_writes_total",
                "Remote-parameter writes to controllers by kind (plan, setpoint) and outcome \
                 (ok, refused_by_read_back, timeout, exception, unreachable, rejected, not_owned)",
            ),
            &["kind", "outcome"],
        )?;
        registry.register(Box::new(writes.clone()))?;
        let requests = prometheus::IntCounter::new(
            "cistern_field_write_requests_total",
            "Write-multiple-registers requests sent to controllers (a room's adjacent plan \
             blocks share one)",
        )?;
        registry.register(Box::new(requests.clone()))?;
        Ok(Self { writes, requests })
    }

    /// Write requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    fn count(&self, kind: &str, outcome: &str) {
        self.writes.with_label_values(&[kind, outcome]).inc();
    }

    /// Writes counted so far with these labels.
    pub fn get(&self, kind: &str, outcome: &str) -> u64 {
        self.writes.with_label_values(&[kind, outcome]).get()
    }
}

struct Link {
    ctx: Option<Context>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("connected", &self.ctx.is_some())
            .field("backoff", &self.backoff)
            .field("retry_at", &self.retry_at)
            .finish()
    }
}

impl Link {
    fn failed(&mut self) {
        self.ctx = None;
        let delay = self.backoff.next_delay(rand::random::<f64>());
        self.retry_at = Some(Instant::now() + delay);
    }
}

#[derive(Debug)]
struct RoomWriter {
    room: RoomId,
    address: String,
    unit_id: u8,
    profile: String,
    mappings: Vec<Mapping>,
    /// First register of each tank's plan, T1 first (none: the controller takes no plans).
    plan_blocks: Vec<Option<u16>>,
    link: tokio::sync::Mutex<Link>,
}

/// Whether this node may write to a room's controller now (in a cluster: it runs the room's
/// shard and is not fenced). Asked right before every request.
pub type WriteGate = Arc<dyn Fn(&RoomId) -> bool + Send + Sync>;

/// Writes remote parameters to every Modbus room of the inventory.
pub struct FieldWriter {
    rooms: HashMap<RoomId, Arc<RoomWriter>>,
    known: std::collections::HashSet<RoomId>,
    config: ModbusConfig,
    audit: Arc<dyn AuditPort>,
    metrics: WriteMetrics,
    /// None: every room (a single node).
    gate: std::sync::OnceLock<WriteGate>,
}

impl std::fmt::Debug for FieldWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldWriter")
            .field("rooms", &self.rooms.len())
            .field("gated", &self.gate.get().is_some())
            .finish_non_exhaustive()
    }
}

/// A plan that was written and read back, as the controller holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenPlan {
    pub tank: DeviceId,
    pub image: PlanImage,
}

impl FieldWriter {
    /// A writer for every room of `inventory` polled over Modbus (profiles resolved now, so a
    /// room whose profile does not fit fails here with its id).
    pub fn new(
        inventory: &Inventory,
        profiles: &ProfileSet,
        config: &ModbusConfig,
        audit: Arc<dyn AuditPort>,
        metrics: WriteMetrics,
    ) -> Result<Self, WriteError> {
        let mut rooms = HashMap::new();
        for room in &inventory.rooms {
            let Some(ModbusSource {
                address,
                unit_id,
                profile,
            }) = room.modbus()
            else {
                continue;
            };
            let with_room = |source| WriteError::Profile {
                room: room.id.clone(),
                source: Arc::new(source),
            };
            let profile = profiles.get(profile).map_err(with_room)?;
            let shape = RoomShape::of(room);
            let mappings = profile.mappings(shape).map_err(with_room)?;
            let plan_blocks = (1..=shape.tanks).map(|n| profile.plan_address(n)).collect();
            rooms.insert(
                room.id.clone(),
                Arc::new(RoomWriter {
                    room: room.id.clone(),
                    address: address.to_owned(),
                    unit_id,
                    profile: profile.name.clone(),
                    mappings,
                    plan_blocks,
                    link: tokio::sync::Mutex::new(Link {
                        ctx: None,
                        backoff: Backoff::new(config.backoff_min, config.backoff_max),
                        retry_at: None,
                    }),
                }),
            );
        }
        Ok(Self {
            rooms,
            known: inventory.rooms.iter().map(|r| r.id.clone()).collect(),
            config: config.clone(),
            audit,
            metrics,
            gate: std::sync::OnceLock::new(),
        })
    }

    /// From now on, writes only to the rooms `gate` allows at the moment of each request
    /// (the others fail with [`WriteError::NotOwned`], audited and counted as `not_owned`).
    /// Only the first call takes effect.
    pub fn set_gate(&self, gate: WriteGate) {
        let _ = self.gate.set(gate);
    }

    pub fn metrics(&self) -> &WriteMetrics {
        &self.metrics
    }

    /// Whether `tank`'s controller takes fill plans.
    pub fn takes_plans(&self, tank: &DeviceId) -> bool {
        self.plan_address(tank).is_ok()
    }

    fn room(&self, room: &RoomId) -> Result<&Arc<RoomWriter>, WriteError> {
        self.rooms.get(room).ok_or_else(|| {
            if self.known.contains(room) {
                WriteError::NotModbus { room: room.clone() }
            } else {
                WriteError::UnknownRoom { room: room.clone() }
            }
        })
    }

    fn plan_address(&self, tank: &DeviceId) -> Result<(&Arc<RoomWriter>, u16), WriteError> {
        let rw = self.room(&tank.room)?;
        let DeviceUnit::Tank(n) = tank.unit else {
            return Err(WriteError::NoPlanRegisters {
                tank: tank.clone(),
                profile: rw.profile.clone(),
            });
        };
        rw.plan_blocks
            .get(usize::from(n).wrapping_sub(1))
            .copied()
            .flatten()
            .map(|a| (rw, a))
            .ok_or_else(|| WriteError::NoPlanRegisters {
                tank: tank.clone(),
                profile: rw.profile.clone(),
            })
    }

    /// Writes the plans of one room's tanks (each cut to what the registers carry), merging
    /// adjacent blocks into one request, reads them back and audits each as `user`. Returns
    /// one result per plan, in order.
    pub async fn write_plans(
        &self,
        user: &str,
        room: &RoomId,
        plans: &[(DeviceId, PlanImage)],
    ) -> Vec<Result<WrittenPlan, WriteError>> {
        let mut results: Vec<Option<Result<WrittenPlan, WriteError>>> =
            plans.iter().map(|_| None).collect();
        // (address, words, plan indices) of each contiguous run.
        let mut runs: Vec<(u16, Vec<u16>, Vec<usize>)> = Vec::new();
        let mut encoded: Vec<(usize, u16, Vec<u16>, PlanImage)> = Vec::new();
        for (i, (tank, plan)) in plans.iter().enumerate() {
            let prepared = (|| {
                if &tank.room != room {
                    return Err(WriteError::UnknownRoom {
                        room: tank.room.clone(),
                    });
                }
                let (_, address) = self.plan_address(tank)?;
                let image = plan.clone().fit();
                let words = image.encode().map_err(|source| WriteError::Plan {
                    tank: tank.clone(),
                    source,
                })?;
                let image = PlanImage::decode(&words).map_err(|source| WriteError::Plan {
                    tank: tank.clone(),
                    source,
                })?;
                Ok((address, words, image))
            })();
            match prepared {
                Ok((address, words, image)) => encoded.push((i, address, words, image)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        encoded.sort_by_key(|(_, a, _, _)| *a);
        for (i, address, words, _) in &encoded {
            match runs.last_mut() {
                Some((start, w, idx))
                    if u32::from(*start) + w.len() as u32 == u32::from(*address)
                        && w.len() + words.len() <= MAX_REGISTERS_PER_WRITE =>
                {
                    w.extend_from_slice(words);
                    idx.push(*i);
                }
                _ => runs.push((*address, words.clone(), vec![*i])),
            }
        }
        for (start, words, idx) in runs {
            let outcome = match self.room(room) {
                Ok(rw) => self.write_block(rw, start, &words).await,
                Err(e) => Err(e),
            };
            for i in idx {
                let image = encoded
                    .iter()
                    .find(|(j, ..)| *j == i)
                    .map(|(_, _, _, image)| image.clone());
                let (Some((tank, _)), Some(image)) = (plans.get(i), image) else {
                    continue;
                };
                results[i] = Some(match &outcome {
                    Ok(()) => Ok(WrittenPlan {
                        tank: tank.clone(),
                        image,
                    }),
                    Err(e) => Err(e.clone()),
                });
            }
        }
        let results: Vec<Result<WrittenPlan, WriteError>> = results
            .into_iter()
            .zip(plans)
            .map(|(r, (tank, _))| {
                r.unwrap_or_else(|| {
                    Err(WriteError::NoPlanRegisters {
                        tank: tank.clone(),
                        profile: String::new(),
                    })
                })
            })
            .collect();
        for (r, (tank, plan)) in results.iter().zip(plans) {
            let outcome = r.as_ref().map_or_else(WriteError::outcome, |_| "ok");
            self.metrics.count("plan", outcome);
            self.audit.record(AuditRecord {
                user: user.to_owned(),
                action: "plan_write",
                target: tank.to_string(),
                detail: match r {
                    Ok(w) => format!("{} (read back identical)", describe(&w.image)),
                    Err(e) => format!("{}: {e}", describe(plan)),
                },
                ok: r.is_ok(),
            });
        }
        results
    }

    /// Writes one writable point (a set-point) of a Modbus room, reads it back and audits it
    /// as `user`. Returns the value the controller holds.
    pub async fn write_point(
        &self,
        user: &str,
        point: &PointId,
        value: f64,
    ) -> Result<f64, WriteError> {
        let result = self.write_point_inner(point, value).await;
        let outcome = result.as_ref().map_or_else(WriteError::outcome, |_| "ok");
        self.metrics.count("setpoint", outcome);
        self.audit.record(AuditRecord {
            user: user.to_owned(),
            action: "setpoint_write",
            target: point.to_string(),
            detail: match &result {
                Ok(v) => format!("value {value}: read back {v}"),
                Err(e) => format!("value {value}: {e}"),
            },
            ok: result.is_ok(),
        });
        result
    }

    async fn write_point_inner(&self, point: &PointId, value: f64) -> Result<f64, WriteError> {
        let rw = self.room(&point.device.room)?;
        let m = rw
            .mappings
            .iter()
            .find(|m| m.unit == point.device.unit && *m.point == *point.name)
            .ok_or_else(|| WriteError::UnknownPoint {
                point: point.clone(),
                profile: rw.profile.clone(),
            })?;
        let (Encoding::Value(format), Some((min, max))) = (m.encoding, m.write_range) else {
            return Err(WriteError::NotWritable {
                point: point.clone(),
                profile: rw.profile.clone(),
            });
        };
        let out_of_range = || WriteError::OutOfRange {
            point: point.clone(),
            value,
            min,
            max,
        };
        if !value.is_finite() || !(min..=max).contains(&value) {
            return Err(out_of_range());
        }
        let words = format.encode(value).ok_or_else(out_of_range)?;
        self.write_block(rw, m.address, words.as_slice()).await?;
        Ok(format.decode(words.as_slice()).unwrap_or(value))
    }

    /// One write-multiple-registers request, then a read of the same registers.
    async fn write_block(
        &self,
        rw: &RoomWriter,
        start: u16,
        words: &[u16],
    ) -> Result<(), WriteError> {
        let end = u32::from(start) + words.len() as u32;
        let mut link = rw.link.lock().await;
        // Asked under the link's lock, right before the request: a node that lost the room
        // while waiting for the link writes nothing.
        if self.gate.get().is_some_and(|may| !may(&rw.room)) {
            return Err(WriteError::NotOwned {
                room: rw.room.clone(),
            });
        }
        if let Some(at) = link.retry_at {
            let now = Instant::now();
            if now < at {
                return Err(WriteError::BackingOff {
                    room: rw.room.clone(),
                    left: at - now,
                });
            }
        }
        let mut ctx = match link.ctx.take() {
            Some(ctx) => ctx,
            None => match self.connect(rw).await {
                Ok(ctx) => ctx,
                Err(e) => {
                    link.failed();
                    return Err(e);
                }
            },
        };
        let after = self.config.request_timeout;
        let link_error = |op: &'static str, e: Option<tokio_modbus::Error>| match e {
            None => WriteError::Timeout {
                room: rw.room.clone(),
                op,
                start,
                end,
                after,
            },
            Some(source) => WriteError::Transport {
                room: rw.room.clone(),
                op,
                start,
                end,
                source: Arc::new(source),
            },
        };
        let exception =
            |op: &'static str, code: tokio_modbus::ExceptionCode| WriteError::Exception {
                room: rw.room.clone(),
                op,
                start,
                end,
                code: format!("{code:?}"),
            };
        self.metrics.requests.inc();
        match timeout(after, ctx.write_multiple_registers(start, words)).await {
            Err(_) => {
                link.failed();
                return Err(link_error("write", None));
            }
            Ok(Err(e)) => {
                link.failed();
                return Err(link_error("write", Some(e)));
            }
            Ok(Ok(Err(code))) => {
                link.ctx = Some(ctx);
                return Err(exception("write", code));
            }
            Ok(Ok(Ok(()))) => {}
        }
        let count = words.len() as u16;
        let read = match timeout(after, ctx.read_holding_registers(start, count)).await {
            Err(_) => {
                link.failed();
                return Err(link_error("read-back", None));
            }
            Ok(Err(e)) => {
                link.failed();
                return Err(link_error("read-back", Some(e)));
            }
            Ok(Ok(Err(code))) => {
                link.ctx = Some(ctx);
                return Err(exception("read-back", code));
            }
            Ok(Ok(Ok(read))) => read,
        };
        link.ctx = Some(ctx);
        link.backoff.reset();
        link.retry_at = None;
        if read != words {
            warn!(room = %rw.room, start, "Modbus write not taken: read-back differs");
            return Err(WriteError::ReadBack {
                room: rw.room.clone(),
                start,
                end,
                wrote: words.to_vec(),
                read,
            });
        }
        Ok(())
    }

    async fn connect(&self, rw: &RoomWriter) -> Result<Context, WriteError> {
        let after = self.config.connect_timeout;
        let stream = match timeout(after, TcpStream::connect(rw.address.as_str())).await {
            Err(_) => {
                return Err(WriteError::ConnectTimeout {
                    room: rw.room.clone(),
                    address: rw.address.clone(),
                    after,
                })
            }
            Ok(Err(source)) => {
                return Err(WriteError::Connect {
                    room: rw.room.clone(),
                    address: rw.address.clone(),
                    source: Arc::new(source),
                })
            }
            Ok(Ok(stream)) => stream,
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(room = %rw.room, %error, "cannot set TCP_NODELAY");
        }
        Ok(tcp::attach_slave(stream, Slave(rw.unit_id)))
    }
}

/// The district planners' way to the field: [`PlanPort`] over the writer. Plans are grouped
/// by room, so one room's tanks go in one batched request (their blocks are adjacent), and the
/// rooms are written one after the other (each has its own link and timeouts).
#[derive(Clone, Debug)]
pub struct FieldPlanPort(pub Arc<FieldWriter>);

impl PlanPort for FieldPlanPort {
    fn deliver(&self, author: String, plans: Vec<PlanDispatch>) -> PortFuture<Vec<PlanDelivery>> {
        let writer = self.0.clone();
        Box::pin(async move {
            let mut by_room: Vec<(RoomId, Vec<(DeviceId, PlanImage)>)> = Vec::new();
            for p in &plans {
                let image = p.rule.to_image(p.priority);
                match by_room.iter_mut().find(|(r, _)| *r == p.tank.room) {
                    Some((_, list)) => list.push((p.tank.clone(), image)),
                    None => by_room.push((p.tank.room.clone(), vec![(p.tank.clone(), image)])),
                }
            }
            let mut out = Vec::with_capacity(plans.len());
            for (room, list) in by_room {
                let results = writer.write_plans(&author, &room, &list).await;
                for ((tank, _), r) in list.into_iter().zip(results) {
                    out.push(PlanDelivery {
                        tank,
                        result: r.map(|_| ()).map_err(|e| e.to_string()),
                    });
                }
            }
            out
        })
    }
}

/// A plan in one line, for the audit log.
fn describe(p: &PlanImage) -> String {
    let windows: Vec<String> = p
        .windows
        .iter()
        .map(|w| {
            format!(
                "{}..{} {:.2} m3/h to {:.3} m",
                w.start_slot, w.end_slot, w.rate_m3h, w.target_level_m
            )
        })
        .collect();
    format!(
        "plan slots {}..{}, priority {}, fallback {:.3} m, windows [{}]",
        p.issued_slot,
        p.expires_slot,
        p.priority,
        p.fallback_level_m,
        windows.join(", ")
    )
}
