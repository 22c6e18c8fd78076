//! Segment's warehouse schema: one flat row per event, snake_case columns, partitioned by
//! collection and date, encoded as NDJSON.

pub mod column_name;
pub mod json_text;
pub mod ndjson;
pub mod request_rows;
pub mod row;
pub mod row_writer;
