//! Modbus TCP server of the simulator (in progress).
