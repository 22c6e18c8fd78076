//! Compaction: the raw landing (at least once) into tables that hold each event once. The
//! winner rule, a table's columns and how raw values become cells, and the merge of new raw
//! copies into a partition are here; reading and writing files is the I/O library's.

pub mod columns;
pub mod leading_rank;
pub mod merge;
pub mod winner;
