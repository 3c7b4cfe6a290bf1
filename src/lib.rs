//! The Cistern server: command line, configuration, and the wiring of the actor tree to its
//! sources (MQTT, Modbus TCP), its sinks and its HTTP API; plus the field simulator that the
//! demo and the tests run against.

pub mod ingest;
pub mod sim;
