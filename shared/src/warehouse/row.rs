//! Flattening events into rows of Segment's warehouse schema.
//!
//! Columns: `id` (the messageId), `event` (the collection slug), `event_text` (the event
//! name), `user_id`, `anonymous_id`, `timestamp`, `original_timestamp`, `sent_at`,
//! `received_at`, `uuid_ts` (load time), `context_*`, and one column per property.
//! Nested objects flatten with `_`, arrays are stored as JSON text, every name is
//! snake_case. When two keys flatten to the same name (`Campaign Name` and
//! `campaign_name`), the first in key order keeps it and the next get `_2`, `_3`, ...

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::column_name::push_column_name;
use crate::collection::Collection;
use crate::mapping::Rejection;
use crate::segment::track::TrackEvent;
use crate::time_format::{format_timestamp, partition_date};

/// Where a row is stored: `collection=<collection>/dt=<dt>/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    /// The collection slug (the table).
    pub collection: String,
    /// The UTC date of the row's `timestamp`, `YYYY-MM-DD`.
    pub dt: String,
}

/// One warehouse row and the partition it belongs in.
#[derive(Debug, Clone, PartialEq)]
pub struct WarehouseRow {
    /// Its partition, equal to what the Firehose JQ query extracts from `columns`.
    pub partition: PartitionKey,
    /// The columns, sorted by name.
    pub columns: Map<String, Value>,
}

impl WarehouseRow {
    /// The row's `id` column (the messageId).
    pub fn id(&self) -> &str {
        self.columns
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Rebuilds a row from its columns (a line read back from the lake or the dead-letter
    /// store). The partition is derived the way the delivery stream's JQ query derives it:
    /// `collection` = `event`, `dt` = the first ten characters of `timestamp`.
    pub fn from_columns(columns: Map<String, Value>) -> Option<Self> {
        let collection = columns.get("event")?.as_str()?.to_owned();
        let dt = columns.get("timestamp")?.as_str()?.get(..10)?.to_owned();
        Some(Self {
            partition: PartitionKey { collection, dt },
            columns,
        })
    }
}

/// The row for a track event loaded at `loaded_at`. Takes the event by value: its strings
/// and property values move into the row instead of being copied.
pub fn track_row(event: TrackEvent, loaded_at: DateTime<Utc>) -> WarehouseRow {
    let partition = PartitionKey {
        collection: event.collection_slug.clone(),
        // Timestamps are always written in UTC, so the first ten characters are the date.
        dt: event.timestamp.get(..10).unwrap_or_default().to_owned(),
    };
    let optional = |s: Option<String>| s.map_or(Value::Null, Value::String);
    let mut columns = Map::new();
    columns.insert("id".into(), Value::String(event.message_id));
    columns.insert("event".into(), Value::String(event.collection_slug));
    columns.insert("event_text".into(), Value::String(event.event));
    columns.insert("user_id".into(), optional(event.user_id));
    columns.insert("anonymous_id".into(), optional(event.anonymous_id));
    columns.insert("timestamp".into(), Value::String(event.timestamp));
    columns.insert(
        "original_timestamp".into(),
        Value::String(event.original_timestamp),
    );
    columns.insert("sent_at".into(), optional(event.sent_at));
    columns.insert("received_at".into(), Value::String(event.received_at));
    columns.insert("uuid_ts".into(), Value::String(format_timestamp(loaded_at)));
    let mut name = String::with_capacity(64);
    let mut suffixes = ColumnSuffixes::default();
    name.push_str("context");
    flatten_into(&mut columns, &mut suffixes, &mut name, event.context);
    name.clear();
    flatten_into(&mut columns, &mut suffixes, &mut name, event.properties);
    WarehouseRow { partition, columns }
}

/// The row for an event that could not be mapped: its reason and exact JSON, stored in the
/// rejected collection under the date it was received.
pub fn rejected_row(rejection: &Rejection, loaded_at: DateTime<Utc>) -> WarehouseRow {
    let collection = Collection::rejected();
    let received = format_timestamp(rejection.received_at);
    let mut columns = Map::new();
    columns.insert("id".into(), Value::String(rejection.message_id.clone()));
    columns.insert("event".into(), Value::String(collection.slug().to_owned()));
    columns.insert(
        "event_text".into(),
        Value::String(collection.event_name().to_owned()),
    );
    columns.insert("timestamp".into(), Value::String(received.clone()));
    columns.insert("received_at".into(), Value::String(received));
    columns.insert("uuid_ts".into(), Value::String(format_timestamp(loaded_at)));
    columns.insert("reason".into(), Value::String(rejection.reason.clone()));
    columns.insert("raw_event".into(), Value::String(rejection.raw.clone()));
    columns.insert("request_index".into(), Value::from(rejection.index));
    columns.insert("source".into(), Value::String(rejection.source.to_owned()));
    columns.insert(
        "context_klaviyo_webhook_id".into(),
        rejection
            .webhook_id
            .clone()
            .map_or(Value::Null, Value::String),
    );
    WarehouseRow {
        partition: PartitionKey {
            collection: collection.slug().to_owned(),
            dt: partition_date(rejection.received_at),
        },
        columns,
    }
}

/// Flattens `object` into `columns`. `name` holds the prefix (empty at the top level) and
/// is reused as the buffer for every column name below it.
fn flatten_into(
    columns: &mut Map<String, Value>,
    suffixes: &mut ColumnSuffixes,
    name: &mut String,
    object: Map<String, Value>,
) {
    let prefix_len = name.len();
    for (key, value) in object {
        name.truncate(prefix_len);
        if prefix_len > 0 {
            name.push('_');
        }
        push_column_name(name, &key);
        match value {
            Value::Object(nested) => flatten_into(columns, suffixes, name, nested),
            Value::Array(_) => {
                insert_unique(columns, suffixes, name, Value::String(value.to_string()))
            }
            scalar => insert_unique(columns, suffixes, name, scalar),
        }
    }
    name.truncate(prefix_len);
}

/// Column names the tables use for their partitions: a property of that name would be
/// shadowed by the partition column, so it is renamed like any other taken name.
const PARTITION_COLUMNS: [&str; 2] = ["collection", "dt"];

/// Tracks, per column name, the next suffix to try, so `k` keys that flatten to one name
/// cost O(k) in all instead of O(k²) probes from `_2` each time.
#[derive(Default)]
struct ColumnSuffixes(HashMap<String, u32>);

fn insert_unique(
    columns: &mut Map<String, Value>,
    suffixes: &mut ColumnSuffixes,
    name: &str,
    value: Value,
) {
    let taken = |columns: &Map<String, Value>, candidate: &str| {
        columns.contains_key(candidate) || PARTITION_COLUMNS.contains(&candidate)
    };
    if !taken(columns, name) {
        columns.insert(name.to_owned(), value);
        return;
    }
    let next = suffixes.0.entry(name.to_owned()).or_insert(2);
    let mut candidate = format!("{name}_{next}");
    while taken(columns, &candidate) {
        *next += 1;
        candidate = format!("{name}_{next}");
    }
    *next += 1;
    columns.insert(candidate, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(properties: Value, context: Value) -> TrackEvent {
        TrackEvent {
            kind: TrackEvent::KIND,
            message_id: "klaviyo-1".into(),
            event: "Email Opened".into(),
            collection_slug: "email_opened".into(),
            user_id: None,
            klaviyo_profile_id: Some("01PROFILE".into()),
            anonymous_id: Some("01PROFILE".into()),
            properties: properties.as_object().unwrap().clone(),
            context: context.as_object().unwrap().clone(),
            timestamp: "2023-08-10T07:21:56.000Z".into(),
            original_timestamp: "2023-08-10T07:21:56.000Z".into(),
            integrations: Map::new(),
            sent_at: None,
            received_at: "2023-08-10T07:22:00.000Z".into(),
        }
    }

    fn loaded() -> DateTime<Utc> {
        crate::time_format::parse_iso_datetime("2023-08-10T07:22:01Z").unwrap()
    }

    #[test]
    fn numbers_are_kept_exactly_as_sent() {
        let properties: Value = serde_json::from_str(
            r#"{"big": 123456789012345678901234567890, "precise": 0.1000000000000000055511151231257827, "id": 18446744073709551617}"#,
        )
        .unwrap();
        let row = track_row(event(properties, json!({})), loaded());
        let mut line = Vec::new();
        crate::warehouse::ndjson::write_ndjson_line(&mut line, &row).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert!(
            line.contains(r#""big":123456789012345678901234567890"#),
            "{line}"
        );
        assert!(
            line.contains(r#""precise":0.1000000000000000055511151231257827"#),
            "{line}"
        );
        assert!(line.contains(r#""id_2":18446744073709551617"#), "{line}");
    }

    #[test]
    fn properties_named_like_partition_columns_are_renamed() {
        let row = track_row(
            event(json!({"dt": "x", "collection": "y"}), json!({})),
            loaded(),
        );
        assert_eq!(row.columns.get("dt_2"), Some(&json!("x")));
        assert_eq!(row.columns.get("collection_2"), Some(&json!("y")));
        assert!(!row.columns.contains_key("dt") && !row.columns.contains_key("collection"));
    }

    #[test]
    fn many_keys_that_flatten_to_one_name_get_consecutive_suffixes() {
        let mut properties = Map::new();
        for i in 0..5000 {
            properties.insert(
                format!("a{}", " ".repeat(i % 7 + 1)) + &"!".repeat(i / 7),
                json!(i),
            );
        }
        let count = properties.len();
        let row = track_row(event(Value::Object(properties), json!({})), loaded());
        assert!(row.columns.contains_key("a"));
        assert!(row.columns.contains_key(&format!("a_{count}")));
        assert!(!row.columns.contains_key(&format!("a_{}", count + 1)));
    }

    #[test]
    fn a_row_read_back_has_the_same_partition() {
        let row = track_row(event(json!({}), json!({})), loaded());
        assert_eq!(WarehouseRow::from_columns(row.columns.clone()), Some(row));
        assert_eq!(WarehouseRow::from_columns(Map::new()), None);
    }

    #[test]
    fn writes_segment_common_columns_and_partition() {
        let row = track_row(event(json!({}), json!({})), loaded());
        assert_eq!(
            row.partition,
            PartitionKey {
                collection: "email_opened".into(),
                dt: "2023-08-10".into()
            }
        );
        assert_eq!(
            Value::Object(row.columns),
            json!({"id": "klaviyo-1", "event": "email_opened", "event_text": "Email Opened",
                   "user_id": null, "anonymous_id": "01PROFILE",
                   "timestamp": "2023-08-10T07:21:56.000Z",
                   "original_timestamp": "2023-08-10T07:21:56.000Z", "sent_at": null,
                   "received_at": "2023-08-10T07:22:00.000Z", "uuid_ts": "2023-08-10T07:22:01.000Z"})
        );
    }

    #[test]
    fn flattens_nested_objects_and_stores_arrays_as_json() {
        let row = track_row(
            event(
                json!({"klaviyo": {"$group_ids": [1, "a"], "$attribution": {"$flow": "F1"}, "machine_open": true}}),
                json!({"integration": {"name": "klaviyo"}, "userAgent": "UA"}),
            ),
            loaded(),
        );
        assert_eq!(row.columns["klaviyo_group_ids"], json!("[1,\"a\"]"));
        assert_eq!(row.columns["klaviyo_attribution_flow"], json!("F1"));
        assert_eq!(row.columns["klaviyo_machine_open"], json!(true));
        assert_eq!(row.columns["context_integration_name"], json!("klaviyo"));
        assert_eq!(row.columns["context_user_agent"], json!("UA"));
    }

    #[test]
    fn keeps_both_values_when_keys_collide() {
        let row = track_row(
            event(
                json!({"klaviyo": {"Campaign Name": "A", "campaign_name": "B"}}),
                json!({}),
            ),
            loaded(),
        );
        assert_eq!(row.columns["klaviyo_campaign_name"], json!("A"));
        assert_eq!(row.columns["klaviyo_campaign_name_2"], json!("B"));
    }

    #[test]
    fn properties_never_overwrite_common_columns() {
        let row = track_row(
            event(json!({"id": "evil", "timestamp": "x"}), json!({})),
            loaded(),
        );
        assert_eq!(row.columns["id"], json!("klaviyo-1"));
        assert_eq!(row.columns["id_2"], json!("evil"));
        assert_eq!(row.columns["timestamp_2"], json!("x"));
    }

    #[test]
    fn rejected_rows_keep_reason_and_raw_json_under_the_receive_date() {
        let rejection = Rejection {
            message_id: "klaviyo-rejected-abc".into(),
            index: 3,
            reason: "data[3]: missing field `topic`".into(),
            raw: r#"{"payload":{}}"#.into(),
            source: "klaviyo_webhook",
            webhook_id: Some("wh".into()),
            received_at: loaded(),
        };
        let row = rejected_row(&rejection, loaded());
        assert_eq!(row.partition.collection, "rejected_events");
        assert_eq!(row.partition.dt, "2023-08-10");
        assert_eq!(row.columns["raw_event"], json!(r#"{"payload":{}}"#));
        assert_eq!(row.columns["request_index"], json!(3));
        assert_eq!(row.id(), "klaviyo-rejected-abc");
    }
}
