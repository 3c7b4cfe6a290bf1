//! The polling task of one room: connect, read every block of the plan each interval, grade
//! the values, deliver one batch per device, and survive whatever the link does.
//!
//! The task holds at most one client context. It is dropped after any timeout or transport
//! error and never reused, because tokio-modbus would read a late answer to the abandoned
//! request as the answer to the next one. Reconnection waits follow [`Backoff`]; the backoff
//! is reset only by a completed poll cycle, so a device that accepts connections and then
//! drops them keeps backing off instead of being hammered.

use super::backoff::Backoff;
use super::metrics::{ModbusMetrics, ProfileMetrics};
use super::{ModbusConfig, ModbusError};
use crate::ingest::field_log::FieldLog;
use crate::ingest::BatchSink;
use cistern_actors::Receipt;
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::modbus::{BlockData, PointRead, Profile, ReadBlock, ReadPlan, RegisterKind};
use cistern_schemas::quality::{assess, ValueRejection};
use cistern_schemas::reading::{DeviceBatch, IngestSource, PointValue, Record};
use cistern_schemas::{DeviceId, DeviceUnit, PointSpec, Quality, RoomId, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_modbus::client::{tcp, Client, Context};
use tokio_modbus::{ExceptionCode, Request, Response, Slave};
use tracing::{debug, info, warn};

/// How often a room's link trouble may reach the log (the counters see every event).
const LINK_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The reason a point is bad when its device answered the "not available" marker.
pub(crate) const NOT_AVAILABLE: &str = "not available";

/// Everything a poller needs to know about its room, resolved at start-up.
pub(crate) struct RoomSetup<'a> {
    pub room: &'a RoomSpec,
    pub address: String,
    pub unit_id: u8,
    pub profile: Arc<Profile>,
    pub plan: ReadPlan,
    pub config: ModbusConfig,
    pub sink: Arc<dyn BatchSink>,
}

/// A device of the room: its id, its id as text (for the sink's reject), its effective specs.
struct Device {
    id: DeviceId,
    label: String,
    specs: Vec<PointSpec>,
}

/// What one read returned.
enum BlockValues {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

pub(crate) struct RoomPoller {
    room: RoomId,
    address: String,
    unit_id: u8,
    profile: Arc<Profile>,
    plan: ReadPlan,
    devices: BTreeMap<DeviceUnit, Device>,
    config: ModbusConfig,
    sink: Arc<dyn BatchSink>,
    metrics: Option<ProfileMetrics>,
    log: FieldLog,
    /// When the link went down and how many attempts failed since; `None` while up.
    outage: Option<(Instant, u32)>,
}

impl RoomPoller {
    pub(crate) fn new(setup: RoomSetup<'_>) -> Self {
        let devices = setup
            .room
            .units()
            .into_iter()
            .map(|unit| {
                let id = DeviceId::new(setup.room.id.clone(), unit);
                let label = id.to_string();
                (
                    unit,
                    Device {
                        id,
                        label,
                        specs: setup.room.point_specs(unit),
                    },
                )
            })
            .collect();
        Self {
            room: setup.room.id.clone(),
            address: setup.address,
            unit_id: setup.unit_id,
            profile: setup.profile,
            plan: setup.plan,
            devices,
            config: setup.config,
            sink: setup.sink,
            metrics: None,
            log: FieldLog::new(LINK_LOG_INTERVAL),
            outage: None,
        }
    }

    pub(crate) fn with_metrics(mut self, metrics: &ModbusMetrics) -> Self {
        self.metrics = Some(metrics.for_profile(&self.profile.name));
        self
    }

    fn count(&self, pick: impl Fn(&ProfileMetrics) -> &prometheus::IntCounter) {
        if let Some(m) = &self.metrics {
            pick(m).inc();
        }
    }

    /// Polls until `shutdown` or `stop` (the room's own, when it has one) turns `true` (or its
    /// sender goes away).
    pub(crate) async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        stop: Option<watch::Receiver<bool>>,
    ) {
        // Thousands of rooms start together: per-room start and stop lines are debug detail.
        debug!(room = %self.room, profile = %self.profile.name, address = %self.address,
               blocks = self.plan.blocks.len(), "Modbus poller started");
        let room_stop = async move {
            match stop {
                Some(mut s) => {
                    let _ = s.wait_for(|stop| *stop).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            () = room_stop => {}
            () = self.poll_forever() => {}
        }
        debug!(room = %self.room, "Modbus poller stopped");
    }

    async fn poll_forever(&mut self) {
        // A random phase spreads thousands of rooms over the interval instead of polling
        // them all at the same instant.
        let phase = self.config.interval.mul_f64(rand::random::<f64>());
        let mut ticker = tokio::time::interval_at(Instant::now() + phase, self.config.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        let mut first_attempt = true;
        loop {
            let mut ctx = loop {
                if !first_attempt {
                    self.count(|m| &m.reconnects);
                }
                match self.connect().await {
                    Ok(ctx) => break ctx,
                    Err(error) => {
                        self.connect_failed(&error);
                        first_attempt = false;
                        tokio::time::sleep(backoff.next_delay(rand::random::<f64>())).await;
                    }
                }
            };
            if !first_attempt {
                // Back from an outage: poll now rather than wait out the interval.
                ticker.reset_immediately();
            }
            first_attempt = false;
            let error = loop {
                ticker.tick().await;
                match self.poll_cycle(&mut ctx).await {
                    Ok(()) => {
                        backoff.reset();
                        self.link_up();
                    }
                    Err(error) => break error,
                }
            };
            // Never reuse a context after a timeout: its late answer would be read as the
            // answer to the next request.
            drop(ctx);
            self.link_lost(&error);
            tokio::time::sleep(backoff.next_delay(rand::random::<f64>())).await;
        }
    }

    async fn connect(&self) -> Result<Context, ModbusError> {
        let after = self.config.connect_timeout;
        let stream = match timeout(after, TcpStream::connect(self.address.as_str())).await {
            Err(_) => {
                self.count(|m| &m.timeouts);
                return Err(ModbusError::ConnectTimeout {
                    room: self.room.clone(),
                    address: self.address.clone(),
                    after,
                });
            }
            Ok(Err(source)) => {
                self.count(|m| &m.transport_errors);
                return Err(ModbusError::Connect {
                    room: self.room.clone(),
                    address: self.address.clone(),
                    source,
                });
            }
            Ok(Ok(stream)) => stream,
        };
        // Requests are tiny and strictly alternate with answers: Nagle would only add delay.
        if let Err(error) = stream.set_nodelay(true) {
            debug!(room = %self.room, %error, "cannot set TCP_NODELAY");
        }
        Ok(tcp::attach_slave(stream, Slave(self.unit_id)))
    }

    // Link trouble shares one log key: an outage is one line (then one a minute while it
    // lasts), not a line per failed attempt.
    fn connect_failed(&mut self, error: &ModbusError) {
        let (_, attempts) = self.outage.get_or_insert((Instant::now(), 0));
        *attempts += 1;
        let attempts = *attempts;
        if let Some(suppressed) = self.log.admit("link") {
            warn!(room = %self.room, profile = %self.profile.name, address = %self.address,
                  attempts, suppressed, %error, "Modbus connect failed; retrying with backoff");
        }
    }

    fn link_lost(&mut self, error: &ModbusError) {
        self.outage.get_or_insert((Instant::now(), 0));
        if let Some(suppressed) = self.log.admit("link") {
            warn!(room = %self.room, profile = %self.profile.name, address = %self.address,
                  %error, suppressed, "Modbus link lost; reconnecting with backoff");
        }
    }

    fn link_up(&mut self) {
        if let Some((since, attempts)) = self.outage.take() {
            info!(room = %self.room, profile = %self.profile.name, attempts,
                  down_for = ?since.elapsed(), "Modbus link restored");
        }
    }

    /// Reads every block once and delivers what was read. A link failure ends the cycle
    /// early (values read so far are still delivered) and is returned.
    async fn poll_cycle(&mut self, ctx: &mut Context) -> Result<(), ModbusError> {
        let started = Instant::now();
        let t = Timestamp::now();
        let mut values: BTreeMap<DeviceUnit, Vec<PointValue>> = BTreeMap::new();
        let mut failure = None;
        for block in &self.plan.blocks {
            self.count(|m| &m.requests);
            match timeout(self.config.request_timeout, read_block(ctx, block)).await {
                Err(_) => {
                    self.count(|m| &m.timeouts);
                    failure = Some(ModbusError::Timeout {
                        room: self.room.clone(),
                        kind: block.kind,
                        start: block.start,
                        end: block.end_inclusive(),
                        after: self.config.request_timeout,
                    });
                    break;
                }
                Ok(Err(source)) => {
                    self.count(|m| &m.transport_errors);
                    failure = Some(ModbusError::Transport {
                        room: self.room.clone(),
                        kind: block.kind,
                        start: block.start,
                        end: block.end_inclusive(),
                        source,
                    });
                    break;
                }
                Ok(Ok(Err(code))) => {
                    self.count(|m| &m.exceptions);
                    self.mark_bad(
                        block,
                        "modbus_exception",
                        &exception_reason(code),
                        &mut values,
                    );
                }
                Ok(Ok(Ok(data))) => match check_length(block, &data) {
                    Ok(()) => self.grade(block, &data, &mut values),
                    Err(reason) => {
                        self.mark_bad(block, "modbus_short_response", &reason, &mut values)
                    }
                },
            }
        }
        self.deliver(t, values).await;
        match failure {
            Some(error) => Err(error),
            None => {
                if let Some(m) = &self.metrics {
                    m.poll_duration.observe(started.elapsed().as_secs_f64());
                }
                Ok(())
            }
        }
    }

    /// Decodes a block and grades every value against its room's point spec: a value the
    /// device marks "not available" is delivered as bad with that reason (so the room shows
    /// the failure at once instead of the last value going stale); a value that cannot be a
    /// value of the point is rejected.
    fn grade(
        &self,
        block: &ReadBlock,
        data: &BlockValues,
        out: &mut BTreeMap<DeviceUnit, Vec<PointValue>>,
    ) {
        let data = match data {
            BlockValues::Words(w) => BlockData::Words(w),
            BlockValues::Bits(b) => BlockData::Bits(b),
        };
        for decoded in block.decode(data) {
            let m = decoded.mapping;
            let Some(device) = self.devices.get(&m.unit) else {
                continue;
            };
            let Some(spec) = device.specs.get(usize::from(m.index)) else {
                continue;
            };
            match sample_of(spec, decoded.read) {
                Ok((value, quality)) => out.entry(m.unit).or_default().push(PointValue {
                    index: m.index,
                    value,
                    quality,
                }),
                Err(rejection) => self.sink.reject(
                    IngestSource::Modbus,
                    &device.label,
                    rejection.label(),
                    &format_args!("point {}: {rejection} ({} {})", m.point, m.kind, m.address),
                ),
            }
        }
    }

    /// Marks every point of a block bad: the device answered, but not with values. The value
    /// is NaN because there is none; consumers go by the quality.
    fn mark_bad(
        &self,
        block: &ReadBlock,
        label: &'static str,
        reason: &str,
        out: &mut BTreeMap<DeviceUnit, Vec<PointValue>>,
    ) {
        self.sink.reject(
            IngestSource::Modbus,
            self.room.as_str(),
            label,
            &format_args!("{block}: {reason}"),
        );
        for m in &block.mappings {
            out.entry(m.unit).or_default().push(PointValue {
                index: m.index,
                value: f64::NAN,
                quality: Quality::bad(reason),
            });
        }
    }

    async fn deliver(&self, t: Timestamp, values: BTreeMap<DeviceUnit, Vec<PointValue>>) {
        for (unit, mut values) in values {
            let Some(device) = self.devices.get(&unit) else {
                continue;
            };
            values.sort_by_key(|v| v.index);
            let batch = DeviceBatch {
                device: device.id.clone(),
                source: IngestSource::Modbus,
                records: vec![Record { t, values }],
            };
            if let Err(error) = self.sink.deliver(batch, Receipt::none()).await {
                if let Some(suppressed) = self.log.admit("deliver") {
                    warn!(room = %self.room, device = %device.label, %error, suppressed,
                          "Modbus batch could not be delivered");
                }
            }
        }
    }
}

/// The sample one decoded point becomes (value and quality), or why it is refused. The value
/// is NaN for a "not available" point because there is none; consumers go by the quality.
fn sample_of(spec: &PointSpec, read: PointRead) -> Result<(f64, Quality), ValueRejection> {
    match read {
        PointRead::Value(v) => assess(spec, v).map(|quality| (v, quality)),
        PointRead::NotAvailable => Ok((f64::NAN, Quality::bad(NOT_AVAILABLE))),
        // Only a response of the wrong table gets here (short ones are caught per block).
        PointRead::NotInData => Err(ValueRejection::NotFinite),
    }
}

fn exception_reason(code: ExceptionCode) -> String {
    format!("modbus exception: {code} ({:#04x})", u8::from(code))
}

/// A response shorter than asked for is the device's fault, like an exception: the block is
/// bad, the link is fine.
fn check_length(block: &ReadBlock, data: &BlockValues) -> Result<(), String> {
    let got = match data {
        BlockValues::Words(w) => w.len(),
        BlockValues::Bits(b) => b.len(),
    };
    if got < usize::from(block.count) {
        return Err(format!(
            "modbus response too short: {got} of {} {}s",
            block.count, block.kind
        ));
    }
    Ok(())
}

/// One read request. Calls the client directly (not `Reader`), whose typed helpers assert on
/// the response length instead of returning an error.
async fn read_block(
    ctx: &mut Context,
    block: &ReadBlock,
) -> Result<Result<BlockValues, ExceptionCode>, tokio_modbus::Error> {
    let request = match block.kind {
        RegisterKind::Coil => Request::ReadCoils(block.start, block.count),
        RegisterKind::Discrete => Request::ReadDiscreteInputs(block.start, block.count),
        RegisterKind::Holding => Request::ReadHoldingRegisters(block.start, block.count),
        RegisterKind::Input => Request::ReadInputRegisters(block.start, block.count),
    };
    Ok(ctx.call(request).await?.map(|response| match response {
        Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits) => BlockValues::Bits(bits),
        Response::ReadHoldingRegisters(words) | Response::ReadInputRegisters(words) => {
            BlockValues::Words(words)
        }
        // tokio-modbus rejects a response whose function differs from the request's; an empty
        // read falls to the length check.
        _ => BlockValues::Words(Vec::new()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_schemas::catalog::DeviceKind;
    use cistern_schemas::modbus::{
        not_available, DataType, Encoding, Mapping, ValueFormat, WordOrder,
    };
    use cistern_schemas::QualityLevel;

    /// Issue 18: a "not available" answer is a bad sample with that reason, now; it was
    /// rejected as not finite, so the room kept the old value until it went stale.
    #[test]
    fn a_not_available_register_is_a_bad_sample_with_its_reason() {
        let index = DeviceKind::Room.point_index("outlet_pressure").unwrap();
        let spec = &DeviceKind::Room.points()[index];
        for dtype in [DataType::U16, DataType::F32] {
            let format = ValueFormat {
                dtype,
                order: WordOrder::Cdab,
                scale: 0.001,
                offset: 0.0,
            };
            let block = ReadBlock {
                kind: RegisterKind::Holding,
                start: 100,
                count: dtype.words(),
                mappings: vec![Mapping {
                    unit: DeviceUnit::Room,
                    point: spec.name,
                    index: index as u16,
                    kind: RegisterKind::Holding,
                    address: 100,
                    encoding: Encoding::Value(format),
                    write_range: None,
                }],
            };
            let marker = not_available(dtype, format.order);
            let decoded = block.decode(BlockData::Words(marker.as_slice()));
            let (value, quality) = sample_of(spec, decoded[0].read).unwrap();
            assert!(value.is_nan(), "{dtype}");
            assert_eq!(quality.level, QualityLevel::Bad, "{dtype}");
            assert_eq!(quality.reason.as_deref(), Some(NOT_AVAILABLE), "{dtype}");

            let words = format.encode(0.35).unwrap();
            let decoded = block.decode(BlockData::Words(words.as_slice()));
            let (value, quality) = sample_of(spec, decoded[0].read).unwrap();
            assert!((value - 0.35).abs() < 1e-6, "{dtype}: {value}");
            assert_eq!(quality.level, QualityLevel::Good, "{dtype}");
        }
        // Missing data stays a rejection, as before.
        assert_eq!(
            sample_of(spec, PointRead::NotInData),
            Err(ValueRejection::NotFinite)
        );
    }
}
