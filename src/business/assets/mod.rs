//! Assets (DOMAIN.md §8, issue 21): the rooms' archives, parts lifecycle, tank cleaning and
//! online inspection. So far: [`weibull`], the failure curves parts are replaced by.

pub mod weibull;
