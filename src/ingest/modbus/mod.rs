//! Modbus TCP poller (in progress).
