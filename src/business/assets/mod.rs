//! Assets (DOMAIN.md §8, issue 21): the rooms' archives ([`archive`]) and the failure curves
//! parts are replaced by ([`weibull`]); parts lifecycle, tank cleaning ([`cleaning`]) and
//! online inspection ([`inspection`]) build on them.

pub mod archive;
pub mod cleaning;
pub mod inspection;
pub mod lifecycle;
pub mod weibull;
