//! Firehose delivery with I/O: the retry loop around `PutRecordBatch` (the limits, packing,
//! batching and retry policy it follows are the core's `source_core::firehose`).

pub mod delivery;
