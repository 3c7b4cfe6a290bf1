//! The `cistern` binary.
fn main() {}
