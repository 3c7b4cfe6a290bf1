//! The simulator's Modbus TCP server: one per simulated room, serving the room's register
//! image laid out by a vendor profile, so the poller is tested against a real peer over a
//! real socket, and the demo can run Modbus rooms next to MQTT ones.
//!
//! What it owns: the register image (refreshed from the simulator with
//! [`ModbusFieldServer::update`]) and the faults a field device shows: exception responses on
//! a register range, slow answers, dropped connections, refused connections, and a device
//! that reads requests but never answers. It serves exactly the address ranges the profile's
//! read plan covers (holes inside a planned read answer 0, like reserved registers on many
//! controllers) and answers *illegal data address* everywhere else. Writes (functions 0x06
//! and 0x10) are taken where the controller takes remote parameters: each tank's fill-plan
//! block, or adjacent blocks in one request (a block written whole must decode as a plan, or
//! *illegal data value*) and the profile's writable
//! points, one whole value at a time within its `write_range` (else *illegal data value*);
//! any other write answers *illegal data address*, other functions *illegal function*. A
//! written set-point is what the controller holds from then on (readings no longer overwrite
//! it). What was written is handed to the simulated room with
//! [`ModbusFieldServer::controller_writes`]. No request, however malformed, makes it panic:
//! every quantity and address is checked before it is used.

use super::ControllerWrites;
use cistern_schemas::fill_plan::{PlanImage, PLAN_WORDS};
use cistern_schemas::modbus::{
    not_available, Encoding, Mapping, Profile, ProfileError, RegisterKind, RoomShape,
};
use cistern_schemas::modbus::{MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ};
use cistern_schemas::reading::RoomReading;
use cistern_schemas::DeviceUnit;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_modbus::server::tcp::Server;
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tracing::{debug, warn};

/// Unit id 255 addresses "the device itself" on Modbus TCP; a server answers it besides its own.
const TCP_DEVICE_UNIT: u8 = 0xFF;

/// Why a simulated server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ModbusServerError {
    #[error("simulated Modbus server: {0}")]
    Profile(#[from] ProfileError),
    #[error("simulated Modbus server: the listener has no local address: {0}")]
    LocalAddr(io::Error),
    #[error("simulated Modbus server must be started inside a tokio runtime")]
    NoRuntime,
}

/// An exception injected on a register range.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InjectedException {
    kind: RegisterKind,
    range: RangeInclusive<u16>,
    code: ExceptionCode,
}

#[derive(Debug, Default)]
struct Faults {
    exceptions: Vec<InjectedException>,
    delay: Duration,
    silent: bool,
    refusing: bool,
    /// Acknowledges writes without keeping them.
    forgetful: bool,
}

/// The register image: only served addresses have an entry.
#[derive(Debug, Default)]
struct Image {
    words: BTreeMap<(RegisterKind, u16), u16>,
    bits: BTreeMap<(RegisterKind, u16), bool>,
    /// Set-points written by the platform, by holding address: readings no longer set them.
    written: BTreeMap<u16, f64>,
}

impl Image {
    /// Holding registers from `first` on take `words` (addresses past 65535 do not exist).
    fn hold(&mut self, first: u32, words: &[u16]) {
        for (a, w) in (first..).zip(words) {
            if let Ok(a) = u16::try_from(a) {
                self.words.insert((RegisterKind::Holding, a), *w);
            }
        }
    }

    fn write(&mut self, m: &Mapping, value: f64) {
        let on = !value.is_nan() && value != 0.0;
        match m.encoding {
            Encoding::Bit => {
                self.bits.insert((m.kind, m.address), on);
            }
            Encoding::RegisterBit(bit) => {
                let word = self.words.entry((m.kind, m.address)).or_insert(0);
                let mask = 1u16 << u32::from(bit.min(15));
                if on {
                    *word |= mask;
                } else {
                    *word &= !mask;
                }
            }
            Encoding::Value(format) => {
                // A value the register cannot hold is served as "not available", as a real
                // transmitter beyond its range would report a fault rather than a lie.
                let words = format.encode(value).unwrap_or_else(|| {
                    debug!(point = %m, value, "simulated value does not fit its register");
                    not_available(format.dtype, format.order)
                });
                for (address, word) in (m.address..).zip(words.as_slice()) {
                    self.words.insert((m.kind, address), *word);
                }
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    unit_id: u8,
    by_unit: BTreeMap<DeviceUnit, Vec<Mapping>>,
    /// First holding register of each tank's plan block, T1 first.
    plan_blocks: Vec<u16>,
    /// Points the platform may write.
    writable: Vec<Mapping>,
    image: Mutex<Image>,
    faults: Mutex<Faults>,
    accepted: AtomicU64,
    refused: AtomicU64,
    requests: AtomicU64,
}

impl Image {
    /// The plan block at holding `block`, as held (unwritten registers read 0).
    fn plan_words(&self, block: u16) -> Vec<u16> {
        let start = u32::from(block);
        (start..start + u32::from(PLAN_WORDS))
            .map(|a| {
                u16::try_from(a)
                    .ok()
                    .and_then(|a| self.words.get(&(RegisterKind::Holding, a)))
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent at every statement, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn answer(&self, req: &SlaveRequest<'_>) -> Result<Response, ExceptionCode> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if req.slave != self.unit_id && req.slave != TCP_DEVICE_UNIT {
            return Err(ExceptionCode::GatewayTargetDevice);
        }
        let (kind, start, count) = match &req.request {
            Request::WriteSingleRegister(a, w) => {
                self.write(*a, &[*w])?;
                return Ok(Response::WriteSingleRegister(*a, *w));
            }
            Request::WriteMultipleRegisters(a, words) => {
                self.write(*a, words)?;
                let n = u16::try_from(words.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
                return Ok(Response::WriteMultipleRegisters(*a, n));
            }
            Request::ReadCoils(a, n) => (RegisterKind::Coil, *a, *n),
            Request::ReadDiscreteInputs(a, n) => (RegisterKind::Discrete, *a, *n),
            Request::ReadHoldingRegisters(a, n) => (RegisterKind::Holding, *a, *n),
            Request::ReadInputRegisters(a, n) => (RegisterKind::Input, *a, *n),
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        let max = if kind.is_bit() {
            MAX_BITS_PER_READ
        } else {
            MAX_REGISTERS_PER_READ
        };
        if count == 0 || count > max {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let end = u32::from(start) + u32::from(count);
        if end > 0x1_0000 {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let last = (end - 1) as u16;
        let injected = lock(&self.faults).exceptions.iter().find_map(|e| {
            let overlaps = e.kind == kind && start <= *e.range.end() && *e.range.start() <= last;
            overlaps.then_some(e.code)
        });
        if let Some(code) = injected {
            return Err(code);
        }
        let image = lock(&self.image);
        if kind.is_bit() {
            let bits = (start..=last)
                .map(|a| image.bits.get(&(kind, a)).copied())
                .collect::<Option<Vec<bool>>>()
                .ok_or(ExceptionCode::IllegalDataAddress)?;
            Ok(match kind {
                RegisterKind::Coil => Response::ReadCoils(bits),
                _ => Response::ReadDiscreteInputs(bits),
            })
        } else {
            let words = (start..=last)
                .map(|a| image.words.get(&(kind, a)).copied())
                .collect::<Option<Vec<u16>>>()
                .ok_or(ExceptionCode::IllegalDataAddress)?;
            Ok(match kind {
                RegisterKind::Holding => Response::ReadHoldingRegisters(words),
                _ => Response::ReadInputRegisters(words),
            })
        }
    }
}

impl Shared {
    /// A write of `words` at holding `start`: inside one plan block, or exactly one writable
    /// point.
    fn write(&self, start: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        if words.is_empty() || words.len() > 123 {
            return Err(ExceptionCode::IllegalDataValue);
        }
        if lock(&self.faults).forgetful {
            return Ok(());
        }
        let first = u32::from(start);
        let end = first + words.len() as u32;
        let block_of = |a: u32| {
            self.plan_blocks
                .iter()
                .copied()
                .find(|&b| u32::from(b) <= a && a < u32::from(b) + u32::from(PLAN_WORDS))
        };
        let mut image = lock(&self.image);
        if block_of(first).is_some() {
            // Plan blocks, one or several adjacent ones (a room's tanks in one request): every
            // register written must be in a block, and a block written whole must be a plan
            // (a partial write is the platform's business).
            let mut touched: Vec<u16> = Vec::new();
            for a in first..end {
                let b = block_of(a).ok_or(ExceptionCode::IllegalDataAddress)?;
                if !touched.contains(&b) {
                    touched.push(b);
                }
            }
            for &b in &touched {
                let (lo, hi) = (u32::from(b), u32::from(b) + u32::from(PLAN_WORDS));
                if first <= lo && hi <= end {
                    let whole = &words[(lo - first) as usize..(hi - first) as usize];
                    if PlanImage::decode(whole).is_err() {
                        return Err(ExceptionCode::IllegalDataValue);
                    }
                }
            }
            image.hold(first, words);
            return Ok(());
        }
        let Some(m) = self
            .writable
            .iter()
            .find(|m| m.address == start && usize::from(m.width()) == words.len())
        else {
            return Err(ExceptionCode::IllegalDataAddress);
        };
        let (Encoding::Value(format), Some((lo, hi))) = (m.encoding, m.write_range) else {
            return Err(ExceptionCode::IllegalDataAddress);
        };
        let value = format
            .decode(words)
            .filter(|v| (lo..=hi).contains(v))
            .ok_or(ExceptionCode::IllegalDataValue)?;
        image.hold(first, words);
        image.written.insert(start, value);
        Ok(())
    }
}

/// The per-connection request handler.
#[derive(Clone, Debug)]
struct FieldService {
    shared: Arc<Shared>,
}

type Answer = Result<Option<Response>, ExceptionCode>;

impl Service for FieldService {
    type Request = SlaveRequest<'static>;
    /// `None` sends nothing: how a silent device is simulated.
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let (delay, silent) = {
            let faults = lock(&self.shared.faults);
            (faults.delay, faults.silent)
        };
        let answer = self.shared.answer(&req);
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if silent {
                Ok(None)
            } else {
                answer.map(Some)
            }
        })
    }
}

fn log_connection_error(error: io::Error) {
    debug!(%error, "simulated Modbus connection ended");
}

/// Accepts connections on the listener until aborted. Aborting the task drops the tokio-modbus
/// server future, which cancels every connection task it spawned: that is how
/// [`ModbusFieldServer::drop_connections`] closes them all at once.
fn spawn_serve(runtime: &Handle, server: Arc<Server>, shared: Arc<Shared>) -> JoinHandle<()> {
    runtime.spawn(async move {
        let on_connected = move |stream: TcpStream, peer: SocketAddr| {
            let shared = Arc::clone(&shared);
            async move {
                if lock(&shared.faults).refusing {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                    debug!(%peer, "simulated Modbus server refuses the connection");
                    return Ok(None);
                }
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = stream.set_nodelay(true) {
                    debug!(%peer, %error, "cannot set TCP_NODELAY");
                }
                Ok(Some((FieldService { shared }, stream)))
            }
        };
        loop {
            // `serve` only returns when accepting fails (e.g. out of file descriptors).
            if let Err(error) = server.serve(&on_connected, log_connection_error).await {
                warn!(%error, "simulated Modbus server cannot accept; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
}

/// A simulated room controller speaking Modbus TCP.
#[derive(Debug)]
pub struct ModbusFieldServer {
    shared: Arc<Shared>,
    server: Arc<Server>,
    runtime: Handle,
    task: Mutex<JoinHandle<()>>,
    local_addr: SocketAddr,
    profile: String,
}

impl ModbusFieldServer {
    /// Serves a room of `shape` laid out by `profile` on `listener`, answering unit `unit_id`
    /// (and 255). Until the first [`update`](Self::update) every value reads "not available".
    /// Must be called inside a tokio runtime.
    pub fn start(
        listener: TcpListener,
        profile: &Profile,
        shape: RoomShape,
        unit_id: u8,
    ) -> Result<Self, ModbusServerError> {
        let runtime = Handle::try_current().map_err(|_| ModbusServerError::NoRuntime)?;
        let local_addr = listener
            .local_addr()
            .map_err(ModbusServerError::LocalAddr)?;
        let plan = profile.plan(shape)?;
        let mut image = Image::default();
        for block in &plan.blocks {
            for address in block.start..=block.end_inclusive() {
                if block.kind.is_bit() {
                    image.bits.insert((block.kind, address), false);
                } else {
                    image.words.insert((block.kind, address), 0);
                }
            }
        }
        let mut by_unit: BTreeMap<DeviceUnit, Vec<Mapping>> = BTreeMap::new();
        let mut writable = Vec::new();
        for m in profile.mappings(shape)? {
            image.write(&m, f64::NAN);
            if m.write_range.is_some() {
                writable.push(m.clone());
            }
            by_unit.entry(m.unit).or_default().push(m);
        }
        // Plan blocks read as all zeros until written: a plan that expired at slot 0.
        let plan_blocks: Vec<u16> = (1..=shape.tanks)
            .filter_map(|n| profile.plan_address(n))
            .collect();
        for &block in &plan_blocks {
            for a in block..block.saturating_add(PLAN_WORDS) {
                image.words.insert((RegisterKind::Holding, a), 0);
            }
        }
        let shared = Arc::new(Shared {
            unit_id,
            by_unit,
            plan_blocks,
            writable,
            image: Mutex::new(image),
            faults: Mutex::new(Faults::default()),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let server = Arc::new(Server::new(listener));
        let task = spawn_serve(&runtime, Arc::clone(&server), Arc::clone(&shared));
        debug!(%local_addr, profile = %profile.name, "simulated Modbus server started");
        Ok(Self {
            shared,
            server,
            runtime,
            task: Mutex::new(task),
            local_addr,
            profile: profile.name.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The profile the image is laid out by.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// Refreshes the image from a reading (values in catalog order per device; NaN = the
    /// device cannot read it, served as the type's "not available" marker, or 0 for a bit).
    /// Devices the layout does not have are ignored.
    pub fn update(&self, reading: &RoomReading) {
        let mut image = lock(&self.shared.image);
        for (unit, values) in &reading.devices {
            let Some(mappings) = self.shared.by_unit.get(unit) else {
                continue;
            };
            for m in mappings {
                if image.written.contains_key(&m.address) && m.write_range.is_some() {
                    continue;
                }
                let value = values
                    .get(usize::from(m.index))
                    .copied()
                    .unwrap_or(f64::NAN);
                image.write(m, value);
            }
        }
    }

    /// What the platform wrote: every tank's plan (`None` where the registers hold no valid
    /// plan) and the outlet pressure set-point once written.
    pub fn controller_writes(&self) -> ControllerWrites {
        let image = lock(&self.shared.image);
        let plans = self
            .shared
            .plan_blocks
            .iter()
            .map(|&block| {
                PlanImage::decode(&image.plan_words(block))
                    .ok()
                    .filter(|p| p.expires_slot > 0)
            })
            .collect();
        let outlet_setpoint_mpa = self
            .shared
            .writable
            .iter()
            .find(|m| m.unit == DeviceUnit::Room && m.point == "outlet_setpoint")
            .and_then(|m| image.written.get(&m.address).copied());
        ControllerWrites {
            plans,
            outlet_setpoint_mpa,
        }
    }

    /// Reads of `kind` touching `range` answer `code` until [`clear_exceptions`](Self::clear_exceptions).
    pub fn fail_range(&self, kind: RegisterKind, range: RangeInclusive<u16>, code: ExceptionCode) {
        lock(&self.shared.faults)
            .exceptions
            .push(InjectedException { kind, range, code });
    }

    pub fn clear_exceptions(&self) {
        lock(&self.shared.faults).exceptions.clear();
    }

    /// Delays every answer by `delay` (zero: answer at once).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.faults).delay = delay;
    }

    /// A silent device reads requests and never answers them (a hung controller behind a
    /// live gateway: the client sees timeouts, not a closed connection).
    pub fn set_silent(&self, silent: bool) {
        lock(&self.shared.faults).silent = silent;
    }

    /// A forgetful device acknowledges every write and keeps none of it (a controller in local
    /// mode that ignores remote parameters): only a read-back catches it.
    pub fn set_forgetful(&self, forgetful: bool) {
        lock(&self.shared.faults).forgetful = forgetful;
    }

    /// A refusing device closes every new connection at once (comms loss behind a gateway).
    /// Combine with [`drop_connections`](Self::drop_connections) to cut existing ones too.
    pub fn set_refusing(&self, refusing: bool) {
        lock(&self.shared.faults).refusing = refusing;
    }

    /// Closes every open connection; new ones are accepted as before.
    pub fn drop_connections(&self) {
        let mut task = lock(&self.task);
        task.abort();
        *task = spawn_serve(
            &self.runtime,
            Arc::clone(&self.server),
            Arc::clone(&self.shared),
        );
    }

    /// Connections accepted (and served) so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Connections closed at once because the server was refusing.
    pub fn connections_refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Requests received so far (answered or not).
    pub fn requests_received(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Stops serving and closes every connection (also done on drop).
    pub fn shutdown(&self) {
        lock(&self.task).abort();
    }
}

impl Drop for ModbusFieldServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
