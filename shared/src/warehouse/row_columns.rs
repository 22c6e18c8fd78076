//! A row's columns on their way to JSON text: gathered in the order the schema defines
//! them, borrowed from the event (nothing is copied into a map first), named uniquely, and
//! written once, sorted by name, straight into the row's buffer.
//!
//! Naming rule: columns are taken in the order they were pushed; a name already taken (or
//! one of the tables' partition columns) gets the first free `_2`, `_3`, ... suffix. Names
//! rarely collide, so the usual case is one sort; only when the sort shows a collision is the
//! rule replayed in push order.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::json_text::{write_json_str, write_json_value};

/// Column names the tables use for their partitions: a property of that name would be
/// shadowed by the partition column, so it is renamed like any other taken name.
const PARTITION_COLUMNS: [&str; 2] = ["collection", "dt"];

/// One column's value, borrowed where the event already holds it.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// SQL `NULL`.
    Null,
    /// A string.
    Text(&'a str),
    /// A count.
    Count(usize),
    /// A JSON scalar (string, number, boolean or null), written as it is.
    Scalar(&'a Value),
    /// An array, stored as its compact JSON text in a string column.
    ArrayAsText(&'a Value),
}

impl Cell<'_> {
    /// `Text` for a present string, `Null` for an absent one.
    pub fn optional(text: Option<&str>) -> Cell<'_> {
        text.map_or(Cell::Null, Cell::Text)
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Text(text) => write_json_str(out, text),
            Cell::Count(count) => out.extend_from_slice(count.to_string().as_bytes()),
            Cell::Scalar(value) => write_json_value(out, value),
            Cell::ArrayAsText(value) => write_json_str(out, &value.to_string()),
        }
    }
}

/// Where a column's name is: a constant of the schema, or a span of the row's name buffer
/// (so a row's built names cost one growing buffer, not one allocation each).
#[derive(Clone, Copy)]
enum Name {
    Fixed(&'static str),
    Built { start: usize, end: usize },
}

struct Column<'a> {
    name: Name,
    pushed: usize,
    cell: Cell<'a>,
}

/// The columns of one row, in the order they were pushed.
pub struct RowColumns<'a> {
    columns: Vec<Column<'a>>,
    built_names: String,
}

fn name_of(built_names: &str, name: Name) -> &str {
    match name {
        Name::Fixed(name) => name,
        Name::Built { start, end } => &built_names[start..end],
    }
}

impl<'a> RowColumns<'a> {
    /// Room for `capacity` columns.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            columns: Vec::with_capacity(capacity),
            built_names: String::with_capacity(capacity * 24),
        }
    }

    /// Adds a column named by a constant of the schema.
    pub fn push(&mut self, name: &'static str, cell: Cell<'a>) {
        self.push_named(Name::Fixed(name), cell);
    }

    /// Adds a column whose name was built (a flattened property); the name is copied.
    pub fn push_built(&mut self, name: &str, cell: Cell<'a>) {
        let name = self.store_name(name);
        self.push_named(name, cell);
    }

    fn store_name(&mut self, name: &str) -> Name {
        let start = self.built_names.len();
        self.built_names.push_str(name);
        Name::Built {
            start,
            end: self.built_names.len(),
        }
    }

    fn push_named(&mut self, name: Name, cell: Cell<'a>) {
        let pushed = self.columns.len();
        self.columns.push(Column { name, pushed, cell });
    }

    /// The row as one compact JSON object, columns sorted by name.
    pub fn into_json(mut self) -> Vec<u8> {
        self.sort_by_name();
        let names = self.built_names.as_str();
        let collides = self
            .columns
            .windows(2)
            .any(|pair| name_of(names, pair[0].name) == name_of(names, pair[1].name))
            || self
                .columns
                .iter()
                .any(|column| PARTITION_COLUMNS.contains(&name_of(names, column.name)));
        if collides {
            self.rename_taken_names();
        }
        let mut out = Vec::with_capacity(1024);
        out.push(b'{');
        for (position, column) in self.columns.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            write_json_str(&mut out, name_of(&self.built_names, column.name));
            out.push(b':');
            column.cell.write(&mut out);
        }
        out.push(b'}');
        out
    }

    fn sort_by_name(&mut self) {
        let Self {
            columns,
            built_names,
        } = self;
        columns.sort_unstable_by(|a, b| {
            name_of(built_names, a.name)
                .as_bytes()
                .cmp(name_of(built_names, b.name).as_bytes())
        });
    }

    /// Replays the naming rule in push order, then sorts by the final names. Remembers, per
    /// name, the next suffix to try, so `k` columns with one name cost O(k) in all instead of
    /// O(k²) probes from `_2` each time.
    fn rename_taken_names(&mut self) {
        self.columns.sort_unstable_by_key(|column| column.pushed);
        let mut taken: HashSet<String> = HashSet::with_capacity(self.columns.len());
        let mut next_suffix: HashMap<String, u32> = HashMap::new();
        let is_taken = |taken: &HashSet<String>, name: &str| {
            taken.contains(name) || PARTITION_COLUMNS.contains(&name)
        };
        for position in 0..self.columns.len() {
            let name = name_of(&self.built_names, self.columns[position].name).to_owned();
            if !is_taken(&taken, &name) {
                taken.insert(name);
                continue;
            }
            let next = next_suffix.entry(name.clone()).or_insert(2);
            let mut candidate = format!("{name}_{next}");
            while is_taken(&taken, &candidate) {
                *next += 1;
                candidate = format!("{name}_{next}");
            }
            *next += 1;
            self.columns[position].name = self.store_name(&candidate);
            taken.insert(candidate);
        }
        self.sort_by_name();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(columns: RowColumns<'_>) -> String {
        String::from_utf8(columns.into_json()).unwrap()
    }

    #[test]
    fn writes_columns_sorted_by_name() {
        let number: Value = serde_json::from_str("1.50").unwrap();
        let array = json!([1, "a"]);
        let mut columns = RowColumns::with_capacity(4);
        columns.push("b", Cell::Scalar(&number));
        columns.push("a", Cell::Text("x\"y"));
        columns.push_built(&String::from("d"), Cell::ArrayAsText(&array));
        columns.push("c", Cell::Null);
        columns.push("e", Cell::Count(7));
        assert_eq!(
            written(columns),
            r#"{"a":"x\"y","b":1.50,"c":null,"d":"[1,\"a\"]","e":7}"#
        );
    }

    #[test]
    fn a_taken_name_gets_the_first_free_suffix_in_push_order() {
        let mut columns = RowColumns::with_capacity(5);
        columns.push("a", Cell::Count(1));
        columns.push("a", Cell::Count(2));
        // Pushed after `a` was renamed to `a_2`, so this one is taken too.
        columns.push_built("a_2", Cell::Count(3));
        columns.push("a", Cell::Count(4));
        columns.push("dt", Cell::Count(5));
        assert_eq!(
            written(columns),
            r#"{"a":1,"a_2":2,"a_2_2":3,"a_3":4,"dt_2":5}"#
        );
    }

    #[test]
    fn no_columns_is_an_empty_object() {
        assert_eq!(written(RowColumns::with_capacity(0)), "{}");
    }
}
