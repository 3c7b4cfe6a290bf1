//! Control: everything the platform writes to the field. Ingest (`crate::ingest`) reads the
//! field; this module is the only one that changes it, so the rules every field write obeys
//! live in one place: an operator or a service is named as the author, the write is verified
//! by reading it back, it is audited whatever its outcome, and it is counted
//! (`cistern_field_writes_total{kind, outcome}`).
//!
//! What is here:
//! - [`writer`]: the verified Modbus TCP writes to pump-room controllers, one link per room
//!   apart from the poller's: the tanks' fill plans and operators' set-points
//!   ([`writer::FieldWriter::write_point`], the back end of `POST /api/v1/rooms/{id}/setpoints`
//!   and of the WebSocket `setpoint` command, whose handlers stay in `crate::api`).
//! - [`plans`]: the live peak-shaving service that plans the districts' tank filling and
//!   sends the plans through the writer ([`writer::FieldPlanPort`]).
//!
//! Next: the security linkage actions (a camera bookmark, a door released or locked when an
//! alarm fires) are field writes too and will live here, under the same rules.

pub mod plans;
pub mod writer;
