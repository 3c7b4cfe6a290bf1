//! The field simulator (placeholder module list; see the submodules).

pub mod modbus_server;
