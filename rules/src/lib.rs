//! Cistern's alarm-rule engine: Rhai scripts with delay, flip, escalation and correlation, and
//! the ISA-18.2 alarm state machine. Pure: no actix, no tokio, no I/O.
//!
//! Not built yet: the engine arrives with the alarm-rules issue. The crate exists now to hold
//! its place in the layering (`schemas ← rules ← actors ← src`), which the other crates are
//! already arranged around.
