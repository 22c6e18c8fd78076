//! A table's columns and how a raw row's values become its cells. Columns only grow: a new
//! property is appended at the end, never removed, renamed or reordered, so every file ever
//! written has columns that are a prefix of the table's (Athena reads Parquet by name, Redshift
//! Spectrum by position: both read every version).
//!
//! Declared columns keep their types: the times Segment's warehouses type as timestamps, and
//! `context_klaviyo_identity_resolved` as a boolean. Every other column is text: a string
//! value as it is, any other value (number, boolean, array, object) as its exact JSON text, so
//! a number is never rounded and a number beside a string in another row is no conflict. A
//! value that does not fit its declared type is null in its column and kept, under its
//! column's name, in the row's `_cast_errors` (a JSON object). Past [`MAX_COLUMNS`] a table
//! takes no new column: such values go to the row's `_extra` (a JSON object).

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::raw_object::{Key, RawObject};

/// Columns a table may have, its two own included. Athena and Glue allow far more; a cap
/// keeps a caller who invents property names from growing a table without end.
pub const MAX_COLUMNS: usize = 1_000;
/// The row's values that did not fit their declared type, by column (JSON object text).
pub const CAST_ERRORS: &str = "_cast_errors";
/// The row's values whose columns are past the cap, by column (JSON object text).
pub const EXTRA: &str = "_extra";

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// UTF-8 text.
    Text,
    /// A boolean.
    Boolean,
    /// A UTC instant, milliseconds.
    Timestamp,
}

/// The declared type of `column`: [`ColumnType::Text`] unless named here.
pub fn declared_type(column: &str) -> ColumnType {
    match column {
        "timestamp" | "original_timestamp" | "sent_at" | "received_at" | "uuid_ts" => {
            ColumnType::Timestamp
        }
        "context_klaviyo_identity_resolved" => ColumnType::Boolean,
        _ => ColumnType::Text,
    }
}

/// One cell of a table row; its text borrowed where it can be (from a raw row's line, or from
/// the row that holds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell<'a> {
    /// No value.
    Null,
    /// Text.
    Text(Cow<'a, str>),
    /// A boolean.
    Bool(bool),
    /// Milliseconds since the Unix epoch, UTC.
    Millis(i64),
}

/// A table's columns, in the order files hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ColumnList", into = "ColumnList")]
pub struct TableColumns {
    columns: Vec<(String, ColumnType)>,
    /// Each name's position, for a lookup per value that does not grow with the table.
    /// foldhash, not SipHash: at most [`MAX_COLUMNS`] names, so flooding it buys nothing.
    positions: HashMap<String, usize, foldhash::fast::RandomState>,
}

/// How a table's columns are stored (`_columns.json`).
#[derive(Clone, Serialize, Deserialize)]
struct ColumnList {
    columns: Vec<(String, ColumnType)>,
}

impl From<ColumnList> for TableColumns {
    fn from(list: ColumnList) -> Self {
        let positions = list
            .columns
            .iter()
            .enumerate()
            .map(|(position, (name, _))| (name.clone(), position))
            .collect();
        Self {
            columns: list.columns,
            positions,
        }
    }
}

impl From<TableColumns> for ColumnList {
    fn from(table: TableColumns) -> Self {
        Self {
            columns: table.columns,
        }
    }
}

/// The columns every table starts with, after its own two, in this order: Segment's `tracks`
/// columns, which the `tracks` table reads from every collection's files. Being the same
/// prefix of every table, they are at the same place in every file, for readers that match
/// columns by position as for those that match them by name.
pub const TRACKS_COLUMNS: [&str; 14] = [
    "id",
    "anonymous_id",
    "user_id",
    "event",
    "event_text",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "uuid_ts",
    "context_library_name",
    "context_library_version",
    "context_integration_name",
    "context_integration_version",
];

impl Default for TableColumns {
    /// A new table: its own two columns, then [`TRACKS_COLUMNS`]. The `tracks` table's
    /// columns are exactly these.
    fn default() -> Self {
        let own = [CAST_ERRORS, EXTRA].into_iter();
        Self::from(ColumnList {
            columns: own
                .chain(TRACKS_COLUMNS)
                .map(|name| (name.to_owned(), declared_type(name)))
                .collect(),
        })
    }
}

impl TableColumns {
    /// The columns, in order.
    pub fn columns(&self) -> &[(String, ColumnType)] {
        &self.columns
    }

    /// Whether the table has `name`.
    pub fn has(&self, name: &str) -> bool {
        self.positions.contains_key(name)
    }

    /// Where `name` is among the columns.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.positions.get(name).copied()
    }

    /// Appends every name of `names` the table lacks, in byte order, while the cap allows;
    /// how many were added.
    pub fn grow<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> usize {
        let mut new: Vec<&str> = names.into_iter().filter(|name| !self.has(name)).collect();
        new.sort_unstable();
        new.dedup();
        let room = MAX_COLUMNS.saturating_sub(self.columns.len());
        let added = new.len().min(room);
        for name in new.into_iter().take(added) {
            self.positions.insert(name.to_owned(), self.columns.len());
            self.columns.push((name.to_owned(), declared_type(name)));
        }
        added
    }
}

/// A row as the table holds it: a cell per column, by the column's position; columns past
/// the row's end (added after it was written) are null. Its texts share one string, so a row
/// costs two allocations, not one per text cell (a day's rows are held until its file is
/// written, and freeing a string per cell was a third of a new row's time, bench/results).
#[derive(Debug, Clone, Default)]
pub struct TableRow {
    /// Every text cell's text, one after the other (a cell set twice leaves its first text
    /// unused here).
    texts: String,
    slots: Vec<Slot>,
}

/// A cell as its row stores it: text as a range of the row's `texts`.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Null,
    Text { start: u32, end: u32 },
    Bool(bool),
    Millis(i64),
}

impl TableRow {
    /// A row of `width` null cells, room made for `text_bytes` bytes of text.
    pub fn nulls(width: usize, text_bytes: usize) -> Self {
        Self {
            texts: String::with_capacity(text_bytes),
            slots: vec![Slot::Null; width],
        }
    }

    /// How many cells the row has (columns past them are null).
    pub fn width(&self) -> usize {
        self.slots.len()
    }

    /// The cell at `position` (null past the row's end).
    pub fn get(&self, position: usize) -> Cell<'_> {
        match self.slots.get(position) {
            None | Some(Slot::Null) => Cell::Null,
            Some(Slot::Text { start, end }) => {
                Cell::Text(Cow::Borrowed(&self.texts[*start as usize..*end as usize]))
            }
            Some(Slot::Bool(flag)) => Cell::Bool(*flag),
            Some(Slot::Millis(millis)) => Cell::Millis(*millis),
        }
    }

    /// Sets the cell at `position`, which is within the row's width.
    pub fn set(&mut self, position: usize, cell: Cell<'_>) {
        self.slots[position] = match cell {
            Cell::Null => Slot::Null,
            Cell::Text(text) => {
                let start = self.texts.len();
                self.texts.push_str(&text);
                // A row's text is at most about twice its raw line's, and the merge takes no line
                // over 1 GiB (`merge::MAX_LINE_BYTES`): the offsets fit in 32 bits.
                Slot::Text {
                    start: start as u32,
                    end: self.texts.len() as u32,
                }
            }
            Cell::Bool(flag) => Slot::Bool(flag),
            Cell::Millis(millis) => Slot::Millis(millis),
        };
    }
}

impl PartialEq for TableRow {
    /// Rows are equal when every cell is, whatever their widths and wherever their texts lie.
    fn eq(&self, other: &Self) -> bool {
        (0..self.width().max(other.width()))
            .all(|position| self.get(position) == other.get(position))
    }
}

impl Eq for TableRow {}

/// The cell of `row` in column `name` (null when the row has none).
pub fn cell_of<'r>(row: &'r TableRow, columns: &TableColumns, name: &str) -> Cell<'r> {
    columns
        .position(name)
        .map_or(Cell::Null, |position| row.get(position))
}

/// The table row of a raw row's `members`, for a table with `columns` (grown beforehand). A
/// member sent twice counts with its last value, as in a JSON object read into a map.
pub fn table_row(members: RawObject<'_>, columns: &TableColumns) -> TableRow {
    // With names the table lacks going to `_extra`, every row is built.
    build_row(&members, columns, true).unwrap_or_default()
}

/// The table row of `members`, the columns grown first when the row brings names the table
/// lacks; whether they grew. A row that brings no new name (nearly every one) is built with
/// one lookup per member, where growing first and then building takes two.
pub fn table_row_growing(members: RawObject<'_>, columns: &mut TableColumns) -> (TableRow, bool) {
    if let Some(row) = known_table_row(&members, columns) {
        return (row, false);
    }
    let grown = columns.grow(members.keys()) > 0;
    (table_row(members, columns), grown)
}

/// The table row of `members` when the table already has a column for every one of them,
/// else `None` (the columns have to grow first).
fn known_table_row(members: &RawObject<'_>, columns: &TableColumns) -> Option<TableRow> {
    build_row(members, columns, false)
}

/// The row of `members`; a name without a column goes to `_extra` when `extra_allowed`, and
/// otherwise gives `None`.
fn build_row(
    members: &RawObject<'_>,
    columns: &TableColumns,
    extra_allowed: bool,
) -> Option<TableRow> {
    let text_bytes = members.0.iter().map(|(_, value)| value.get().len()).sum();
    let mut row = TableRow::nulls(columns.columns().len(), text_bytes);
    let mut cast_errors = Map::new();
    let mut extra = Map::new();
    for (Key(name), value) in &members.0 {
        let Some(position) = columns.position(name) else {
            if !extra_allowed {
                return None;
            }
            extra.insert(name.to_string(), json_value(value));
            continue;
        };
        // An earlier value of the same member gives way, whether it fit or not.
        cast_errors.remove(name.as_ref());
        match raw_cell(value, declared_type(name)) {
            Ok(cell) => row.set(position, cell),
            Err(value) => {
                row.set(position, Cell::Null);
                cast_errors.insert(name.to_string(), value);
            }
        }
    }
    if !cast_errors.is_empty()
        && let Some(position) = columns.position(CAST_ERRORS)
    {
        row.set(
            position,
            Cell::Text(Value::Object(cast_errors).to_string().into()),
        );
    }
    if !extra.is_empty()
        && let Some(position) = columns.position(EXTRA)
    {
        row.set(
            position,
            Cell::Text(Value::Object(extra).to_string().into()),
        );
    }
    Some(row)
}

/// The value whose JSON text is `raw`.
fn json_value(raw: &RawValue) -> Value {
    // The text was read as JSON by the same parser, with the same nesting limit: it parses.
    serde_json::from_str(raw.get()).unwrap_or_else(|_| Value::String(raw.get().to_owned()))
}

/// The cell of the value whose JSON text is `raw`, in a column of type `ty`; the value back
/// when it does not fit. A string without escapes (nearly every one) is copied once, straight
/// from the line into its row; anything else takes the general way through [`cell`].
fn raw_cell(raw: &RawValue, ty: ColumnType) -> Result<Cell<'_>, Value> {
    let text = raw.get();
    let plain = text
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .filter(|inner| !inner.contains('\\'));
    match plain {
        Some(inner) => match ty {
            ColumnType::Text => Ok(Cell::Text(Cow::Borrowed(inner))),
            ColumnType::Timestamp => DateTime::parse_from_rfc3339(inner)
                .map(|time| Cell::Millis(time.timestamp_millis()))
                .map_err(|_| Value::String(inner.to_owned())),
            ColumnType::Boolean => Err(Value::String(inner.to_owned())),
        },
        None => scalar_cell(text, ty).map_or_else(|| cell(json_value(raw), ty), Ok),
    }
}

/// The cell of a `null`, a boolean or a number without an exponent that fits its column,
/// straight from its JSON text (serde_json's `arbitrary_precision` keeps such a number's
/// digits as sent, so the text is the same); `None` for anything else, which takes the
/// general way.
fn scalar_cell(text: &str, ty: ColumnType) -> Option<Cell<'_>> {
    match (text, ty) {
        ("null", _) => Some(Cell::Null),
        ("true" | "false", ColumnType::Text) => Some(Cell::Text(Cow::Borrowed(text))),
        ("true" | "false", ColumnType::Boolean) => Some(Cell::Bool(text == "true")),
        // Without an exponent: serde_json writes an exponent its own way (1E5 as 1e+5). The
        // text is valid JSON, so these characters alone make a number.
        (_, ColumnType::Text)
            if text
                .bytes()
                .all(|b| b == b'-' || b == b'.' || b.is_ascii_digit()) =>
        {
            Some(Cell::Text(Cow::Borrowed(text)))
        }
        _ => None,
    }
}

/// `value` as a cell of type `ty`, its text moved rather than copied; the value back when it
/// does not fit.
fn cell(value: Value, ty: ColumnType) -> Result<Cell<'static>, Value> {
    match (value, ty) {
        (Value::Null, _) => Ok(Cell::Null),
        (Value::String(text), ColumnType::Text) => Ok(Cell::Text(text.into())),
        (other, ColumnType::Text) => Ok(Cell::Text(other.to_string().into())),
        (Value::Bool(flag), ColumnType::Boolean) => Ok(Cell::Bool(flag)),
        (Value::String(text), ColumnType::Timestamp) => match DateTime::parse_from_rfc3339(&text) {
            Ok(time) => Ok(Cell::Millis(time.timestamp_millis())),
            Err(_) => Err(Value::String(text)),
        },
        (other, _) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The row of the raw row `line` for a table with `columns`.
    fn row_of(line: &str, columns: &TableColumns) -> TableRow {
        table_row(RawObject::parse(line.as_bytes()).unwrap(), columns)
    }

    #[test]
    fn every_table_starts_with_the_same_tracks_columns() {
        let mut columns = TableColumns::default();
        columns.grow(["zeta", "alpha", "id"]);
        let names: Vec<&str> = columns.columns().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[..2], [CAST_ERRORS, EXTRA]);
        assert_eq!(names[2..2 + TRACKS_COLUMNS.len()], TRACKS_COLUMNS);
        assert_eq!(names[2 + TRACKS_COLUMNS.len()..], ["alpha", "zeta"]);
        assert_eq!(
            columns.columns()[7],
            ("timestamp".into(), ColumnType::Timestamp)
        );
    }

    #[test]
    fn scalars_read_from_their_text_give_the_cells_the_general_way_gives() {
        let texts = [
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1.50",
            "1E5",
            "-12.0e+10",
            "1e-7",
            "123456789012345678901234567890",
        ];
        for text in texts {
            let raw = RawValue::from_string(text.to_owned()).unwrap();
            for ty in [ColumnType::Text, ColumnType::Boolean] {
                if let Some(fast) = scalar_cell(text, ty) {
                    assert_eq!(Ok(fast), cell(json_value(&raw), ty), "{text} as {ty:?}");
                }
            }
        }
        // The short way is taken where it should be, and only there.
        assert_eq!(
            scalar_cell("1.50", ColumnType::Text),
            Some(Cell::Text("1.50".into()))
        );
        assert_eq!(
            scalar_cell("false", ColumnType::Boolean),
            Some(Cell::Bool(false))
        );
        assert_eq!(scalar_cell("null", ColumnType::Timestamp), Some(Cell::Null));
        assert_eq!(scalar_cell("7", ColumnType::Timestamp), None);
        assert_eq!(scalar_cell("1E5", ColumnType::Text), None);
        assert_eq!(scalar_cell("[1]", ColumnType::Text), None);
    }

    #[test]
    fn a_row_with_a_name_the_table_lacks_is_not_built_until_the_columns_grow() {
        let mut columns = TableColumns::default();
        let line = br#"{"id":"k-1","e":1.50,"s":"Hi"}"#;
        let members = RawObject::parse(line).unwrap();
        assert_eq!(known_table_row(&members, &columns), None);
        columns.grow(members.keys());
        assert_eq!(
            known_table_row(&members, &columns),
            Some(table_row(RawObject::parse(line).unwrap(), &columns))
        );
    }

    #[test]
    fn declared_columns_keep_their_types_and_the_rest_is_exact_text() {
        let mut columns = TableColumns::default();
        let line = br#"{"id":"k-1","timestamp":"2024-01-04T18:05:01.000Z","context_klaviyo_identity_resolved":true,
                "klaviyo_esp":1,"big":123456789012345678901234567890,"e":1.50,"s":"Hi","n":null,
                "q":"say \"hi\"","o":{"b": [1, 2.0]}}"#;
        let members = RawObject::parse(line).unwrap();
        columns.grow(members.keys());
        let row = table_row(members, &columns);
        assert_eq!(
            cell_of(&row, &columns, "timestamp"),
            Cell::Millis(1_704_391_501_000)
        );
        assert_eq!(
            cell_of(&row, &columns, "context_klaviyo_identity_resolved"),
            Cell::Bool(true)
        );
        assert_eq!(
            cell_of(&row, &columns, "klaviyo_esp"),
            Cell::Text("1".into())
        );
        assert_eq!(
            cell_of(&row, &columns, "big"),
            Cell::Text("123456789012345678901234567890".into())
        );
        assert_eq!(cell_of(&row, &columns, "e"), Cell::Text("1.50".into()));
        assert_eq!(cell_of(&row, &columns, "s"), Cell::Text("Hi".into()));
        assert_eq!(cell_of(&row, &columns, "n"), Cell::Null);
        assert_eq!(
            cell_of(&row, &columns, "q"),
            Cell::Text(r#"say "hi""#.into())
        );
        assert_eq!(
            cell_of(&row, &columns, "o"),
            Cell::Text(r#"{"b":[1,2.0]}"#.into())
        );
        assert_eq!(cell_of(&row, &columns, CAST_ERRORS), Cell::Null);
        assert_eq!(cell_of(&row, &columns, EXTRA), Cell::Null);
    }

    #[test]
    fn a_value_that_does_not_fit_is_null_and_kept_in_cast_errors() {
        let mut columns = TableColumns::default();
        columns.grow(["timestamp", "context_klaviyo_identity_resolved"]);
        let row = row_of(
            &json!({"timestamp": "yesterday", "context_klaviyo_identity_resolved": "yes"})
                .to_string(),
            &columns,
        );
        assert_eq!(cell_of(&row, &columns, "timestamp"), Cell::Null);
        let Cell::Text(errors) = cell_of(&row, &columns, CAST_ERRORS) else {
            panic!("no cast errors");
        };
        let errors: Value = serde_json::from_str(&errors).unwrap();
        assert_eq!(
            errors,
            json!({"timestamp": "yesterday", "context_klaviyo_identity_resolved": "yes"})
        );
    }

    #[test]
    fn a_member_sent_twice_counts_with_its_last_value() {
        let mut columns = TableColumns::default();
        columns.grow(["s", "timestamp"]);
        let row = row_of(
            r#"{"s":"first","timestamp":"yesterday","s":"last","timestamp":"2024-01-04T18:05:01.000Z"}"#,
            &columns,
        );
        assert_eq!(cell_of(&row, &columns, "s"), Cell::Text("last".into()));
        assert_eq!(
            cell_of(&row, &columns, "timestamp"),
            Cell::Millis(1_704_391_501_000)
        );
        assert_eq!(cell_of(&row, &columns, CAST_ERRORS), Cell::Null);
        let row = row_of(
            r#"{"timestamp":"2024-01-04T18:05:01.000Z","timestamp":"yesterday"}"#,
            &columns,
        );
        assert_eq!(cell_of(&row, &columns, "timestamp"), Cell::Null);
        assert_eq!(
            cell_of(&row, &columns, CAST_ERRORS),
            Cell::Text(r#"{"timestamp":"yesterday"}"#.into())
        );
    }

    #[test]
    fn columns_are_appended_in_order_and_stop_at_the_cap() {
        let mut columns = TableColumns::default();
        assert_eq!(columns.grow(["b", "a", "b"]), 2);
        assert_eq!(columns.grow(["c", "a"]), 1);
        let names: Vec<&str> = columns.columns().iter().map(|(n, _)| n.as_str()).collect();
        let start = 2 + TRACKS_COLUMNS.len();
        assert_eq!(names[start..], ["a", "b", "c"]);

        let many: Vec<String> = (0..2 * MAX_COLUMNS).map(|i| format!("p{i:05}")).collect();
        let added = columns.grow(many.iter().map(String::as_str));
        assert_eq!(added, MAX_COLUMNS - start - 3);
        assert_eq!(columns.columns().len(), MAX_COLUMNS);
        let last = &many[2 * MAX_COLUMNS - 1];
        let past_the_cap = json!({"a": "x", last.clone(): 7}).to_string();
        // Past the cap a row never has every column: it takes the way that fills `_extra`.
        let members = RawObject::parse(past_the_cap.as_bytes()).unwrap();
        assert_eq!(known_table_row(&members, &columns), None);
        let row = row_of(&past_the_cap, &columns);
        assert_eq!(cell_of(&row, &columns, "a"), Cell::Text("x".into()));
        assert_eq!(
            cell_of(&row, &columns, EXTRA),
            Cell::Text(format!(r#"{{"{last}":7}}"#).into())
        );
    }
}
