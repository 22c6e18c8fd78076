//! One table file: rows in, Parquet bytes out, and back. Written with Apache Arrow's Parquet
//! writer (GZIP pages at level 2, row groups of up to 250,000 rows); every column nullable,
//! text as UTF-8 strings, timestamps as UTC milliseconds, so Athena and Redshift Spectrum read
//! them by name.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::WriterProperties;
use source_core::compaction::columns::{Cell, ColumnType, TableColumns, TableRow};

/// Rows per row group: a day of a busy collection in a few groups, each small enough for a
/// reader to take one at a time.
const ROWS_PER_ROW_GROUP: usize = 250_000;

/// GZIP level 2: zlib-rs's level 1 is a quick mode that left the unique ids (the bulk of a
/// query's bytes) half as big again; levels 4 to 9 shrank them under 1 % more than 2, for more
/// CPU (docs/design.md, "Table file codec").
const PAGE_GZIP_LEVEL: u32 = 2;

/// Why a table file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TableFileError {
    /// Arrow refused the columns (a bug: they are built from the same schema).
    #[error("the table's columns could not be assembled: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The Parquet writer or reader failed.
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A file holds a column its table does not list (the columns file lost a write).
    #[error("column {column} is in a table file but not in the table's columns")]
    UnknownColumn {
        /// The column.
        column: String,
    },
    /// A file holds a column of a type tables never have.
    #[error("column {column} has type {found}, not one a table writes")]
    UnexpectedType {
        /// The column.
        column: String,
        /// Its Arrow type.
        found: String,
    },
}

/// The Arrow type of a column type.
fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    }
}

/// `rows` as a Parquet file with exactly `columns`, in their order.
pub fn write_table_file(
    columns: &TableColumns,
    rows: &[TableRow],
) -> Result<Vec<u8>, TableFileError> {
    let schema = Arc::new(Schema::new(
        columns
            .columns()
            .iter()
            .map(|(name, ty)| Field::new(name, arrow_type(*ty), true))
            .collect::<Vec<_>>(),
    ));
    // Filled a row at a time: each row is read once, front to back, where a column at a time
    // read every row once per column, from memory each time (bench/results).
    let mut builders: Vec<ColumnBuilder> = columns
        .columns()
        .iter()
        .map(|(_, ty)| ColumnBuilder::new(*ty, rows.len()))
        .collect();
    for row in rows {
        for (position, builder) in builders.iter_mut().enumerate() {
            builder.append(row.get(position));
        }
    }
    let arrays: Vec<ArrayRef> = builders.into_iter().map(ColumnBuilder::finish).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::GZIP(GzipLevel::try_new(PAGE_GZIP_LEVEL)?))
        .set_max_row_group_row_count(Some(ROWS_PER_ROW_GROUP))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(out)
}

/// One column's values as they are appended; a cell of another type than the column's is
/// written as null (the rows come from `table_row`, which never makes one).
enum ColumnBuilder {
    Text(StringBuilder),
    Boolean(BooleanBuilder),
    Timestamp(TimestampMillisecondBuilder),
}

impl ColumnBuilder {
    /// A builder for a column of type `ty`, with room for `rows` values.
    fn new(ty: ColumnType, rows: usize) -> Self {
        match ty {
            // Room for the values' offsets; their bytes grow as they come.
            ColumnType::Text => Self::Text(StringBuilder::with_capacity(rows, 0)),
            ColumnType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Timestamp => Self::Timestamp(
                TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
        }
    }

    fn append(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (Self::Text(builder), Cell::Text(text)) => builder.append_value(text),
            (Self::Text(builder), _) => builder.append_null(),
            (Self::Boolean(builder), Cell::Bool(flag)) => builder.append_value(flag),
            (Self::Boolean(builder), _) => builder.append_null(),
            (Self::Timestamp(builder), Cell::Millis(millis)) => builder.append_value(millis),
            (Self::Timestamp(builder), _) => builder.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::Text(mut builder) => Arc::new(builder.finish()),
            Self::Boolean(mut builder) => Arc::new(builder.finish()),
            Self::Timestamp(mut builder) => Arc::new(builder.finish()),
        }
    }
}

/// Every row of a table file, as rows of a table with `columns` (which has every column the
/// file has: a file's columns are a prefix of its table's).
pub fn read_table_file(
    bytes: Bytes,
    columns: &TableColumns,
) -> Result<Vec<TableRow>, TableFileError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let width = columns.columns().len();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let start = rows.len();
        rows.resize_with(start + batch.num_rows(), || TableRow::nulls(width, 0));
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let position =
                columns
                    .position(field.name())
                    .ok_or_else(|| TableFileError::UnknownColumn {
                        column: field.name().clone(),
                    })?;
            read_column(field.name(), position, array, &mut rows[start..])?;
        }
    }
    Ok(rows)
}

fn read_column(
    name: &str,
    position: usize,
    array: &ArrayRef,
    rows: &mut [TableRow],
) -> Result<(), TableFileError> {
    let any = array.as_any();
    if let Some(texts) = any.downcast_ref::<StringArray>() {
        for (row, value) in rows.iter_mut().zip(texts.iter()) {
            if let Some(text) = value {
                row.set(position, Cell::Text(text.into()));
            }
        }
    } else if let Some(flags) = any.downcast_ref::<BooleanArray>() {
        for (row, value) in rows.iter_mut().zip(flags.iter()) {
            if let Some(flag) = value {
                row.set(position, Cell::Bool(flag));
            }
        }
    } else if let Some(times) = any.downcast_ref::<TimestampMillisecondArray>() {
        for (row, value) in rows.iter_mut().zip(times.iter()) {
            if let Some(millis) = value {
                row.set(position, Cell::Millis(millis));
            }
        }
    } else {
        return Err(TableFileError::UnexpectedType {
            column: name.to_owned(),
            found: array.data_type().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_they_were_written() {
        let mut columns = TableColumns::default();
        columns.grow([
            "id",
            "timestamp",
            "context_klaviyo_identity_resolved",
            "klaviyo_esp",
        ]);
        let at = |name: &str| columns.position(name).unwrap();
        let rows: Vec<TableRow> = (0..3)
            .map(|i| {
                let mut row = TableRow::nulls(columns.columns().len(), 0);
                row.set(at("id"), Cell::Text(format!("k-{i}").into()));
                row.set(at("timestamp"), Cell::Millis(1_704_391_501_000 + i));
                if i != 1 {
                    row.set(at("context_klaviyo_identity_resolved"), Cell::Bool(i == 0));
                    row.set(at("klaviyo_esp"), Cell::Text("1".into()));
                }
                row
            })
            .collect();
        let bytes = write_table_file(&columns, &rows).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(
            read_table_file(Bytes::from(bytes.clone()), &columns).unwrap(),
            rows
        );
        // Read as rows of the table grown since: the new column is null.
        let mut grown = columns.clone();
        grown.grow(["later"]);
        let read = read_table_file(Bytes::from(bytes), &grown).unwrap();
        assert!(read.iter().all(|row| row.width() == grown.columns().len()));
        assert_eq!(read[0].get(grown.position("later").unwrap()), Cell::Null);
    }

    #[test]
    fn pages_are_gzip_and_files_written_with_snappy_before_still_read() {
        let mut columns = TableColumns::default();
        columns.grow(["id", "klaviyo_esp"]);
        let at = |name: &str| columns.position(name).unwrap();
        let rows: Vec<TableRow> = (0..4)
            .map(|i| {
                let mut row = TableRow::nulls(columns.columns().len(), 0);
                row.set(at("id"), Cell::Text(format!("klaviyo-{i}").into()));
                row.set(at("klaviyo_esp"), Cell::Text("1".into()));
                row
            })
            .collect();
        let bytes = Bytes::from(write_table_file(&columns, &rows).unwrap());
        let metadata = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .metadata()
            .clone();
        for group in metadata.row_groups() {
            for chunk in group.columns() {
                assert!(matches!(chunk.compression(), Compression::GZIP(_)));
            }
        }

        // A file of those two columns with Snappy pages, as tables were written before GZIP.
        let ids = StringArray::from(vec!["klaviyo-0", "klaviyo-1", "klaviyo-2", "klaviyo-3"]);
        let esp = StringArray::from(vec!["1"; 4]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("klaviyo_esp", DataType::Utf8, true),
        ]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(esp)]).unwrap();
        let snappy = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut written_before = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut written_before, schema, Some(snappy)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        assert_eq!(
            read_table_file(Bytes::from(written_before), &columns).unwrap(),
            rows
        );
    }
}
