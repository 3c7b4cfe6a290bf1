//! Modbus register maps ("profiles"): one per pump-room controller model, read from
//! `schemas/profiles/*.toml` (the format is documented in `schemas/profiles/README.md`).
//!
//! This module owns everything about Modbus that needs no socket: the profile format and its
//! validation, the layout of a concrete room (the profile's device templates repeated per pump,
//! tank and camera), the planning of block reads, and the codec between register words and
//! engineering values. The poller (`src/ingest/modbus`) and the simulator's server
//! (`src/sim/modbus_server.rs`) both build on it, so the two ends cannot disagree about where a
//! point lives or how it is scaled, and the codec is property-tested without a runtime.
//!
//! Where things are (everything is re-exported here, so callers name `modbus::X`):
//! - `codec`: data types, word orders, scaling and the "not available" markers.
//! - `reads`: a room's mappings grouped into block reads, and a block's data decoded per point.
//! - `profile`: profiles, the set a node loads, and a room's layout by a profile.
//! - `validate`: the profile file format and every check on it.
//!
//! Conventions, fixed here once:
//! - Addresses are 0-based protocol (PDU) addresses, not the 1-based `4xxxx` notation of
//!   vendor manuals (holding register 40001 is address 0).
//! - 16-bit registers are big-endian as the standard says; 32-bit values span two registers
//!   whose order is the profile's `word_order` (ABCD = high word first, CDAB = low word
//!   first; BADC and DCBA additionally swap the bytes in each word).
//! - Engineering value = raw × scale + offset, in the catalog unit of the point.
//! - Every type has a "not available" raw value that vendors use for a failed measurement:
//!   0xFFFF (u16), 0x8000 (i16), 0xFFFF_FFFF (u32), 0x8000_0000 (i32), NaN (f32). It decodes
//!   to NaN, and NaN (the simulator's "unreadable") encodes to it; a block read reports it as
//!   [`PointRead::NotAvailable`], and ingest delivers the point as bad with reason
//!   "not available" at that instant (the device said the measurement failed: the point is
//!   bad now, not merely not updated).

mod codec;
mod profile;
mod reads;
mod validate;

pub use codec::{decode, encode, not_available, DataType, Encoding, ValueFormat, WordOrder, Words};
pub use profile::{
    DeviceTemplate, Entry, PlanBlock, Profile, ProfileError, ProfileSet, RoomShape, Stride,
};
pub use reads::{
    plan_reads, BlockData, DecodedValue, Mapping, PointRead, ReadBlock, ReadLimits, ReadPlan,
};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Most registers one read may ask for (Modbus application protocol, function 0x03/0x04).
pub const MAX_REGISTERS_PER_READ: u16 = 125;
/// Most bits one read may ask for (function 0x01/0x02).
pub const MAX_BITS_PER_READ: u16 = 2000;

/// The four primary tables of a Modbus device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterKind {
    /// Read-write bits (function 0x01).
    Coil,
    /// Read-only bits (function 0x02).
    Discrete,
    /// Read-write 16-bit registers (function 0x03).
    Holding,
    /// Read-only 16-bit registers (function 0x04).
    Input,
}

impl RegisterKind {
    pub const ALL: [RegisterKind; 4] = [
        RegisterKind::Coil,
        RegisterKind::Discrete,
        RegisterKind::Holding,
        RegisterKind::Input,
    ];

    /// Whether this table holds single bits rather than 16-bit words.
    pub fn is_bit(self) -> bool {
        matches!(self, RegisterKind::Coil | RegisterKind::Discrete)
    }

    /// A bounded label (metrics, logs).
    pub fn label(self) -> &'static str {
        match self {
            RegisterKind::Coil => "coil",
            RegisterKind::Discrete => "discrete",
            RegisterKind::Holding => "holding",
            RegisterKind::Input => "input",
        }
    }
}

impl fmt::Display for RegisterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegisterKind::Coil => "coil",
            RegisterKind::Discrete => "discrete input",
            RegisterKind::Holding => "holding register",
            RegisterKind::Input => "input register",
        })
    }
}
