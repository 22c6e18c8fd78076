//! Writing one row's columns as one JSON object. Columns are pushed in the order the schema
//! defines them, each value written at once into a scratch buffer (nothing is copied into a
//! map of values first); `finish` names them uniquely, sorts them by name and writes the row,
//! the columns that rank a copy of the event first (`in_written_order`).
//! One writer serves every row of a request (each thread keeps its own between requests), so
//! its buffers are allocated once.
//!
//! A flattened property's column is pushed as its prefix and its key as sent (`push_keyed`):
//! the rows of a request mostly repeat a few shapes, and a row whose prefixes and keys match a
//! remembered layout is written without converting a single key to its column name.
//!
//! Naming rule: columns are taken in the order they were pushed; a name already taken (or
//! one of the tables' partition columns) gets the first free `_2`, `_3`, ... suffix. Names
//! rarely collide, so the usual case is one sort; only when the sort shows a collision is the
//! rule replayed in push order.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::column_name::push_column_name;
use super::json_text::write_json_str;
use crate::compaction::winner::RANK_COLUMNS;

/// Column names the tables use for their partitions: a property of that name would be
/// shadowed by the partition column, so it is renamed like any other taken name.
const PARTITION_COLUMNS: [&str; 2] = ["collection", "dt"];

/// One column's value, borrowed from where the event holds it.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// SQL `NULL`.
    Null,
    /// A string.
    Text(&'a str),
    /// A count.
    Count(usize),
    /// A boolean.
    Flag(bool),
    /// A number's JSON text, written as it is.
    Number(&'a str),
    /// Compact JSON text (an array's), stored as text in a string column.
    JsonAsText(&'a str),
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
            Cell::Flag(true) => out.extend_from_slice(b"true"),
            Cell::Flag(false) => out.extend_from_slice(b"false"),
            Cell::Number(number) => out.extend_from_slice(number.as_bytes()),
            Cell::JsonAsText(json) => write_json_str(out, json),
        }
    }
}

/// Where a column's name is: a constant of the schema, or a span of the writer's name
/// buffer (built names cost one growing buffer, not one allocation each).
#[derive(Clone, Copy)]
enum Name {
    Fixed(&'static str),
    Built {
        start: usize,
        end: usize,
    },
    /// A prefix and a key whose column name is not worked out yet: `names[start..split]` is
    /// the prefix, `names[split..end]` the key as sent. A row whose names match a remembered
    /// layout never needs it; any other row converts it first (`convert_keyed_names`).
    Keyed {
        start: usize,
        split: usize,
        end: usize,
    },
}

#[derive(Clone, Copy)]
struct Column {
    name: Name,
    /// The first 16 bytes of the name, big-endian, zero-padded: orders most pairs of names
    /// with one integer comparison (see `sort_key`).
    sort_key: u128,
    /// Its position in push order.
    pushed: usize,
    /// Its value's JSON text: a span of the writer's value buffer.
    value_start: usize,
    value_end: usize,
}

/// The pushed names of a row, one entry per column in push order: a constant, the length
/// of a built name, or the lengths of a prefix and a key. With the names' buffer it fixes
/// the names exactly, because built names, prefixes and keys are stored in push order, one
/// after the other, and a column name is a function of its prefix and key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PushedName {
    Fixed(&'static str),
    Built(usize),
    /// The lengths of the prefix and of the key.
    Keyed(usize, usize),
}

impl PushedName {
    fn of(name: Name) -> Self {
        match name {
            Name::Fixed(name) => Self::Fixed(name),
            Name::Built { start, end } => Self::Built(end - start),
            Name::Keyed { start, split, end } => Self::Keyed(split - start, end - split),
        }
    }
}

/// How a row with exactly these pushed names is written: its columns in output order, each
/// with the text before its value (`{"name":` or `,"name":`). The rows of one request share a
/// few shapes (one per collection, mostly), so a row whose names match a remembered layout is
/// written without sorting or renaming anything.
struct Layout {
    built_names: String,
    pushed: Vec<PushedName>,
    /// Every column's `,"name":` text, in output order, one after the other.
    keys: Vec<u8>,
    /// Per output column: its push position and where its text ends in `keys`.
    columns: Vec<(usize, usize)>,
}

/// How many layouts a writer remembers; the oldest is replaced first.
const REMEMBERED_LAYOUTS: usize = 8;

/// Above this many bytes of buffers, a thread's writer is not kept for the next request: one
/// outsized row (a property of megabytes) must not hold its memory for the process's life.
const KEPT_WRITER_BYTES: usize = 256 * 1024;

thread_local! {
    /// Each thread's writer, kept between requests: its buffers and remembered layouts serve
    /// the next request, so a request of one event does not build them again.
    static THREAD_WRITER: RefCell<RowWriter> = RefCell::new(RowWriter::default());
}

/// Writes rows, one at a time: push a row's columns, then `finish` it.
pub struct RowWriter {
    columns: Vec<Column>,
    names: String,
    values: Vec<u8>,
    layouts: Vec<Layout>,
    next_replaced: usize,
}

impl Default for RowWriter {
    /// Room for a typical Klaviyo row (about 45 columns, 1.6 KB), so even a request of one
    /// event allocates each buffer once.
    fn default() -> Self {
        Self {
            columns: Vec::with_capacity(64),
            names: String::with_capacity(2048),
            values: Vec::with_capacity(4096),
            layouts: Vec::new(),
            next_replaced: 0,
        }
    }
}

/// A name's first 16 bytes as a big-endian integer, zero-padded. If `sort_key(x) <
/// sort_key(y)` then `x < y` byte-wise (a shorter prefix pads with the smallest byte), so
/// only equal keys need the whole names compared.
fn sort_key(name: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let head = &name.as_bytes()[..name.len().min(16)];
    bytes[..head.len()].copy_from_slice(head);
    u128::from_be_bytes(bytes)
}

/// Ends a row's object: `}`, or `{}` when it has no column at all.
fn close_object(out: &mut Vec<u8>) {
    if out.is_empty() {
        out.push(b'{');
    }
    out.push(b'}');
}

/// The name of a column; a keyed column must have been converted (`convert_keyed_names`):
/// until then its span holds the prefix and the key as sent, not its name.
fn name_of(names: &str, name: Name) -> &str {
    match name {
        Name::Fixed(name) => name,
        Name::Built { start, end } | Name::Keyed { start, end, .. } => &names[start..end],
    }
}

impl RowWriter {
    /// Runs `write` with this thread's writer, kept from the last call (a fresh one if this
    /// thread's is in use). What a writer remembers only saves work: every row is the same as
    /// a new writer would write.
    pub fn with_thread_writer<T>(write: impl FnOnce(&mut RowWriter) -> T) -> T {
        THREAD_WRITER.with(|kept| match kept.try_borrow_mut() {
            Ok(mut writer) => {
                // A row left half-pushed by a panic in an earlier call must not leak into this one.
                writer.clear_row();
                let written = write(&mut writer);
                if writer.held_bytes() > KEPT_WRITER_BYTES {
                    *writer = RowWriter::default();
                }
                written
            }
            Err(_) => write(&mut RowWriter::default()),
        })
    }

    fn clear_row(&mut self) {
        self.columns.clear();
        self.names.clear();
        self.values.clear();
    }

    /// The bytes the writer's buffers and layouts hold.
    fn held_bytes(&self) -> usize {
        let layouts: usize = self
            .layouts
            .iter()
            .map(|layout| {
                layout.built_names.capacity()
                    + layout.keys.capacity()
                    + layout.pushed.capacity() * size_of::<PushedName>()
                    + layout.columns.capacity() * size_of::<(usize, usize)>()
            })
            .sum();
        layouts
            + self.columns.capacity() * size_of::<Column>()
            + self.names.capacity()
            + self.values.capacity()
    }

    /// Adds a column named by a constant of the schema.
    pub fn push(&mut self, name: &'static str, cell: Cell<'_>) {
        self.push_named(Name::Fixed(name), cell);
    }

    /// Adds a column whose name is given whole; the name is copied. The naming rule's tests
    /// push names this way, free of the key conversion.
    #[cfg(test)]
    fn push_built(&mut self, name: &str, cell: Cell<'_>) {
        let name = self.store_name(name);
        self.push_named(name, cell);
    }

    /// Adds a column named `prefix` followed by the column name of `key`
    /// ([`push_column_name`]), such as `klaviyo_` and `Campaign Name` for
    /// `klaviyo_campaign_name`. Converting keys is a good part of writing a row, and the
    /// rows of a request mostly repeat the same keys: the conversion waits until `finish`
    /// finds no remembered layout for the row.
    pub fn push_keyed(&mut self, prefix: &str, key: &str, cell: Cell<'_>) {
        let start = self.names.len();
        self.names.push_str(prefix);
        let split = self.names.len();
        self.names.push_str(key);
        let end = self.names.len();
        self.push_named(Name::Keyed { start, split, end }, cell);
    }

    fn store_name(&mut self, name: &str) -> Name {
        let start = self.names.len();
        self.names.push_str(name);
        Name::Built {
            start,
            end: self.names.len(),
        }
    }

    fn push_named(&mut self, name: Name, cell: Cell<'_>) {
        let value_start = self.values.len();
        cell.write(&mut self.values);
        self.columns.push(Column {
            name,
            sort_key: 0,
            pushed: self.columns.len(),
            value_start,
            value_end: self.values.len(),
        });
    }

    /// The pushed columns as one compact JSON object, the rank columns first and the rest
    /// sorted by name; the writer is then empty, ready for the next row.
    pub fn finish(&mut self) -> Vec<u8> {
        let out = match self.remembered_layout() {
            Some(layout) => self.write_with(layout),
            None => self.sort_and_write(),
        };
        self.clear_row();
        out
    }

    /// The remembered layout for exactly the names pushed (columns still in push order).
    fn remembered_layout(&self) -> Option<usize> {
        self.layouts.iter().position(|layout| {
            layout.built_names == self.names
                && layout.pushed.len() == self.columns.len()
                && layout
                    .pushed
                    .iter()
                    .zip(&self.columns)
                    .all(|(pushed, column)| *pushed == PushedName::of(column.name))
        })
    }

    fn write_with(&self, layout: usize) -> Vec<u8> {
        let layout = &self.layouts[layout];
        // The keys, the values and the closing brace.
        let mut out = Vec::with_capacity(layout.keys.len() + self.values.len() + 2);
        let mut key_start = 0;
        for &(pushed, key_end) in &layout.columns {
            let column = &self.columns[pushed];
            out.extend_from_slice(&layout.keys[key_start..key_end]);
            out.extend_from_slice(&self.values[column.value_start..column.value_end]);
            key_start = key_end;
        }
        close_object(&mut out);
        out
    }

    /// Names, sorts and writes the row, and remembers how.
    fn sort_and_write(&mut self) -> Vec<u8> {
        let pushed: Vec<PushedName> = self
            .columns
            .iter()
            .map(|c| PushedName::of(c.name))
            .collect();
        let built_names = self.names.clone();
        self.convert_keyed_names();
        self.sort_by_name();
        if self.has_taken_names() {
            self.rename_taken_names();
        }
        let names = self.names.as_str();
        let length = 2 + self
            .columns
            .iter()
            .map(|c| name_of(names, c.name).len() + 4 + c.value_end - c.value_start)
            .sum::<usize>();
        let mut out = Vec::with_capacity(length);
        let mut layout = Layout {
            built_names,
            pushed,
            keys: Vec::with_capacity(length - self.values.len()),
            columns: Vec::with_capacity(self.columns.len()),
        };
        for column in self.in_written_order() {
            let key_start = layout.keys.len();
            layout.keys.push(if key_start == 0 { b'{' } else { b',' });
            write_json_str(&mut layout.keys, name_of(names, column.name));
            layout.keys.push(b':');
            layout.columns.push((column.pushed, layout.keys.len()));
            out.extend_from_slice(&layout.keys[key_start..]);
            out.extend_from_slice(&self.values[column.value_start..column.value_end]);
        }
        close_object(&mut out);
        self.remember(layout);
        out
    }

    /// The named, sorted columns in the order a row is written: the columns that rank a
    /// copy of the event ([`RANK_COLUMNS`], in that order) first, so the compaction can rank
    /// a copy from the row's first members and drop a losing one without reading the rest;
    /// then every other column by name.
    fn in_written_order(&self) -> impl Iterator<Item = &Column> {
        let names = self.names.as_str();
        let is_rank = |column: &&Column| RANK_COLUMNS.contains(&name_of(names, column.name));
        let leading = RANK_COLUMNS.iter().filter_map(move |rank| {
            self.columns
                .iter()
                .find(|column| name_of(names, column.name) == *rank)
        });
        leading.chain(self.columns.iter().filter(move |column| !is_rank(column)))
    }

    /// Gives every keyed column its name, built after the names already stored (the spans
    /// already taken stay valid).
    fn convert_keyed_names(&mut self) {
        let Self { columns, names, .. } = self;
        if !columns.iter().any(|c| matches!(c.name, Name::Keyed { .. })) {
            return;
        }
        let mut converted = String::with_capacity(2 * names.len() + columns.len());
        converted.push_str(names);
        for column in columns.iter_mut() {
            if let Name::Keyed { start, split, end } = column.name {
                let name_start = converted.len();
                converted.push_str(&names[start..split]);
                push_column_name(&mut converted, &names[split..end]);
                column.name = Name::Built {
                    start: name_start,
                    end: converted.len(),
                };
            }
        }
        *names = converted;
    }

    fn remember(&mut self, layout: Layout) {
        if self.layouts.len() < REMEMBERED_LAYOUTS {
            self.layouts.push(layout);
        } else {
            self.layouts[self.next_replaced] = layout;
            self.next_replaced = (self.next_replaced + 1) % REMEMBERED_LAYOUTS;
        }
    }

    /// Sorts by name, equal names in push order.
    fn sort_by_name(&mut self) {
        let Self { columns, names, .. } = self;
        for column in columns.iter_mut() {
            column.sort_key = sort_key(name_of(names, column.name));
        }
        columns.sort_unstable_by(|a, b| {
            a.sort_key
                .cmp(&b.sort_key)
                .then_with(|| name_of(names, a.name).cmp(name_of(names, b.name)))
                .then(a.pushed.cmp(&b.pushed))
        });
    }

    /// Whether the sorted columns hold a name twice, or a partition column's name.
    fn has_taken_names(&self) -> bool {
        let names = self.names.as_str();
        self.columns
            .windows(2)
            .any(|pair| name_of(names, pair[0].name) == name_of(names, pair[1].name))
            || self
                .columns
                .iter()
                .any(|column| PARTITION_COLUMNS.contains(&name_of(names, column.name)))
    }

    /// Replays the naming rule in push order, then sorts by the final names. A name is
    /// taken for a column when a column pushed before it has it as its own name (that name is
    /// then held by it or, if it was renamed, by whoever held the name first), or when a
    /// rename gave it to an earlier column. Remembers, per name, the next suffix to try, so
    /// `k` columns with one name cost O(k) probes in all, not O(k²).
    fn rename_taken_names(&mut self) {
        let mut in_push_order = vec![0; self.columns.len()];
        for (position, column) in self.columns.iter().enumerate() {
            in_push_order[column.pushed] = position;
        }
        let mut given_by_renames: HashSet<String> = HashSet::new();
        let mut next_suffix: HashMap<String, usize> = HashMap::new();
        let mut renames: Vec<(usize, String)> = Vec::new();
        for position in in_push_order {
            let column = self.columns[position];
            let name = name_of(&self.names, column.name);
            if !self.is_taken(name, column.pushed, &given_by_renames) {
                continue;
            }
            let next = next_suffix.entry(name.to_owned()).or_insert(2);
            let mut candidate = format!("{name}_{next}");
            while self.is_taken(&candidate, column.pushed, &given_by_renames) {
                *next += 1;
                candidate = format!("{name}_{next}");
            }
            *next += 1;
            given_by_renames.insert(candidate.clone());
            renames.push((position, candidate));
        }
        for (position, name) in renames {
            self.columns[position].name = self.store_name(&name);
        }
        self.sort_by_name();
    }

    /// Whether `name` is taken for the column pushed `pushed`-th (see `rename_taken_names`).
    /// Needs the columns sorted by their pushed names.
    fn is_taken(&self, name: &str, pushed: usize, given_by_renames: &HashSet<String>) -> bool {
        PARTITION_COLUMNS.contains(&name)
            || given_by_renames.contains(name)
            || self
                .first_pushed_with_name(name)
                .is_some_and(|first| first < pushed)
    }

    /// The push position of the first column pushed with `name`, if any: the first of its
    /// run in name order.
    fn first_pushed_with_name(&self, name: &str) -> Option<usize> {
        let names = self.names.as_str();
        let position = self
            .columns
            .partition_point(|column| name_of(names, column.name) < name);
        self.columns
            .get(position)
            .filter(|column| name_of(names, column.name) == name)
            .map(|column| column.pushed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(writer: &mut RowWriter) -> String {
        String::from_utf8(writer.finish()).unwrap()
    }

    #[test]
    fn writes_columns_sorted_by_name() {
        let mut writer = RowWriter::default();
        writer.push("b", Cell::Number("1.50"));
        writer.push("a", Cell::Text("x\"y"));
        writer.push_built(&String::from("d"), Cell::JsonAsText(r#"[1,"a"]"#));
        writer.push("c", Cell::Null);
        writer.push("e", Cell::Count(7));
        assert_eq!(
            written(&mut writer),
            r#"{"a":"x\"y","b":1.50,"c":null,"d":"[1,\"a\"]","e":7}"#
        );
    }

    #[test]
    fn the_thread_writer_writes_what_a_new_writer_writes() {
        let row = |writer: &mut RowWriter, shape: usize| {
            writer.push("id", Cell::Count(shape));
            writer.push_built(
                if shape.is_multiple_of(2) { "a" } else { "b" },
                Cell::Text("x"),
            );
            writer.push_built("a", Cell::Flag(true));
            writer.finish()
        };
        for shape in 0..4 {
            let kept = RowWriter::with_thread_writer(|writer| row(writer, shape));
            assert_eq!(kept, row(&mut RowWriter::default(), shape));
        }
    }

    #[test]
    fn the_thread_writer_starts_every_call_empty() {
        // A call that stops half-way through a row (as a panic would) leaves nothing behind.
        RowWriter::with_thread_writer(|writer| writer.push("stale", Cell::Null));
        let row = RowWriter::with_thread_writer(|writer| {
            writer.push("a", Cell::Count(1));
            // A nested call gets a writer of its own.
            let nested = RowWriter::with_thread_writer(|inner| {
                inner.push("b", Cell::Count(2));
                written(inner)
            });
            assert_eq!(nested, r#"{"b":2}"#);
            written(writer)
        });
        assert_eq!(row, r#"{"a":1}"#);
    }

    #[test]
    fn the_thread_writer_is_not_kept_after_an_outsized_row() {
        let large = "x".repeat(KEPT_WRITER_BYTES);
        let row = RowWriter::with_thread_writer(|writer| {
            writer.push("a", Cell::Text(&large));
            writer.finish()
        });
        assert_eq!(row.len(), large.len() + 8);
        let held = THREAD_WRITER.with(|kept| kept.borrow().held_bytes());
        assert_eq!(held, RowWriter::default().held_bytes());
    }

    #[test]
    fn a_taken_name_gets_the_first_free_suffix_in_push_order() {
        let mut writer = RowWriter::default();
        writer.push("a", Cell::Count(1));
        writer.push("a", Cell::Count(2));
        // Pushed after `a` was renamed to `a_2`, so this one is taken too.
        writer.push_built("a_2", Cell::Count(3));
        writer.push("a", Cell::Count(4));
        writer.push("dt", Cell::Count(5));
        // Pushed before anything took `b_2`: it keeps it, and the second `b` skips it.
        writer.push_built("b_2", Cell::Count(6));
        writer.push("b", Cell::Count(7));
        writer.push("b", Cell::Count(8));
        assert_eq!(
            written(&mut writer),
            r#"{"a":1,"a_2":2,"a_2_2":3,"a_3":4,"b":7,"b_2":6,"b_3":8,"dt_2":5}"#
        );
    }

    #[test]
    fn sort_keys_never_order_names_against_their_byte_order() {
        let names = [
            "",
            "a",
            "a_",
            "a_2",
            "ab",
            "context_klaviyo_",
            "context_klaviyo_a",
            "context_klaviyo_b",
            "context_klaviyoz",
            "klaviyo",
            "klaviyo_",
            "z",
            "é",
            "\u{0}",
            "a\u{0}",
            "a\u{0}\u{0}",
        ];
        for x in names {
            for y in names {
                if sort_key(x) < sort_key(y) {
                    assert!(x.as_bytes() < y.as_bytes(), "{x:?} {y:?}");
                }
            }
        }
    }

    #[test]
    fn a_finished_writer_starts_the_next_row_empty() {
        let mut writer = RowWriter::default();
        assert_eq!(written(&mut writer), "{}");
        writer.push("a", Cell::Count(1));
        writer.push_built("a", Cell::Count(2));
        assert_eq!(written(&mut writer), r#"{"a":1,"a_2":2}"#);
        writer.push_built("z", Cell::Null);
        assert_eq!(written(&mut writer), r#"{"z":null}"#);
    }

    /// The naming rule in its plainest form: every name taken so far in a set, each column
    /// probing `_2`, `_3`, ... from its own counter.
    fn reference_names(pushed: &[&str]) -> Vec<String> {
        let mut taken: HashSet<String> = HashSet::new();
        let mut next: HashMap<&str, usize> = HashMap::new();
        let is_taken =
            |taken: &HashSet<String>, n: &str| taken.contains(n) || PARTITION_COLUMNS.contains(&n);
        pushed
            .iter()
            .map(|&name| {
                let mut chosen = name.to_owned();
                if is_taken(&taken, name) {
                    let suffix = next.entry(name).or_insert(2);
                    while is_taken(&taken, &format!("{name}_{suffix}")) {
                        *suffix += 1;
                    }
                    chosen = format!("{name}_{suffix}");
                    *suffix += 1;
                }
                taken.insert(chosen.clone());
                chosen
            })
            .collect()
    }

    #[test]
    fn names_follow_the_plain_rule_for_random_collision_heavy_rows() {
        let atoms = [
            "a",
            "a_2",
            "a_3",
            "a_2_2",
            "b",
            "dt",
            "collection",
            "dt_2",
            "_",
        ];
        let mut random = fastrand::Rng::with_seed(8);
        // Twelve shapes, more than a writer remembers, so rows hit remembered layouts, miss
        // them, and replace them; every row gets new values.
        let shapes: Vec<Vec<&str>> = (0..12)
            .map(|_| {
                (0..random.usize(0..14))
                    .map(|_| atoms[random.usize(0..atoms.len())])
                    .collect()
            })
            .collect();
        let mut writer = RowWriter::default();
        for _ in 0..3000 {
            let pushed = &shapes[random.usize(0..shapes.len())];
            let values: Vec<usize> = pushed.iter().map(|_| random.usize(0..1000)).collect();
            for (name, value) in pushed.iter().zip(&values) {
                writer.push_built(name, Cell::Count(*value));
            }
            let mut expected: Vec<(String, usize)> =
                reference_names(pushed).into_iter().zip(values).collect();
            expected.sort();
            let expected = format!(
                "{{{}}}",
                expected
                    .iter()
                    .map(|(name, value)| format!("\"{name}\":{value}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            assert_eq!(written(&mut writer), expected, "pushed {pushed:?}");
        }
    }

    #[test]
    fn a_keyed_column_is_named_by_its_prefix_and_converted_key() {
        let mut writer = RowWriter::default();
        let mut row = |prefix: &str, key: &str| {
            writer.push("id", Cell::Count(1));
            writer.push_keyed(prefix, key, Cell::Count(2));
            writer.push_keyed("k_", "campaign_name", Cell::Count(3));
            written(&mut writer)
        };
        let expected = [
            (
                "k_",
                "Campaign Name",
                r#"{"id":1,"k_campaign_name":2,"k_campaign_name_2":3}"#,
            ),
            (
                "k_",
                "Subject",
                r#"{"id":1,"k_campaign_name":3,"k_subject":2}"#,
            ),
            // The same bytes split differently between prefix and key name another column.
            ("k_", "Ab", r#"{"id":1,"k_ab":2,"k_campaign_name":3}"#),
            ("k_A", "b", r#"{"id":1,"k_Ab":2,"k_campaign_name":3}"#),
        ];
        // Twice each: the second row of a shape is written with its remembered layout.
        for _ in 0..2 {
            for (prefix, key, row_json) in expected {
                assert_eq!(row(prefix, key), row_json, "{prefix:?} {key:?}");
            }
        }
    }

    #[test]
    fn a_remembered_layout_serves_only_the_same_names_in_the_same_order() {
        let mut writer = RowWriter::default();
        let mut row = |first: &str, second: &str| {
            writer.push("id", Cell::Count(1));
            writer.push_built(first, Cell::Count(2));
            writer.push_built(second, Cell::Count(3));
            written(&mut writer)
        };
        assert_eq!(row("b", "a"), r#"{"id":1,"a":3,"b":2}"#);
        assert_eq!(row("b", "a"), r#"{"id":1,"a":3,"b":2}"#);
        // The same bytes split differently, and the same names in another order.
        assert_eq!(row("ba", ""), r#"{"id":1,"":3,"ba":2}"#);
        assert_eq!(row("a", "b"), r#"{"id":1,"a":2,"b":3}"#);
        assert_eq!(row("a", "a"), r#"{"id":1,"a":2,"a_2":3}"#);
        assert_eq!(row("a", "a"), r#"{"id":1,"a":2,"a_2":3}"#);
    }
}
