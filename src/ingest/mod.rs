//! Ingest: field data in, decoded batches out to the room actors.

pub mod modbus;
