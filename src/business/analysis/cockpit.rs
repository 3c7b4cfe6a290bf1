//! The cockpit (驾驶舱, issue 22 item 6): the indicator catalogue, per-role boards users reorder
//! and subscribe to, drill-down fleet → zone → room → device, the wall screen and the daily and
//! monthly reports.
