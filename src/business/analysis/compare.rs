//! Comparisons (issue 22 item 4): several devices' points on one chart, aligned, with rollups
//! for long ranges; the same point over two periods overlaid; exported as .xlsx or CSV.
