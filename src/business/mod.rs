//! The business layer (业务层): the utility's management of its pump rooms around the live
//! supervision — work orders today; assets, inspections, analysis and scores as they land.
//!
//! It sits beside the supervision core, not inside it: its services keep their records behind
//! the records port ([`crate::store::Records`], both backends, one conformance suite) and learn
//! of the plant through events (an annunciated alarm is an event the dispatcher consumes), never
//! by reaching into actor state. Nothing here can slow or block the alarm path.

pub mod analysis;
pub mod assets;
pub mod workorders;
