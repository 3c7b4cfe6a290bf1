//! Modbus register maps (in progress).
