//! Flattening events into rows of Segment's warehouse schema.
//!
//! Columns: `id` (the messageId), `event` (the collection slug), `event_text` (the event
//! name), `user_id`, `anonymous_id`, `timestamp`, `original_timestamp`, `sent_at`,
//! `received_at`, `uuid_ts` (load time), `context_*`, and one column per property.
//! Nested objects flatten with `_`, arrays are stored as JSON text, every name is
//! snake_case. When two keys flatten to the same name (`Campaign Name` and
//! `campaign_name`), the first in key order keeps it and the next get `_2`, `_3`, ...
//!
//! A row is written to its JSON text once, when it is made (`row_writer`): each column's value
//! is written as it is taken from the event, the names are sorted (the columns that rank a
//! copy of the event, `compaction::winner::RANK_COLUMNS`, go first), and the row goes straight
//! into its buffer, with no map of copied values in between. Every sink sends or stores those
//! bytes.

use serde_json::{Map, Value};

use super::column_name::push_column_name;
use super::json_text::{write_json_str, write_json_value};
use super::row_writer::{Cell, RowWriter};
use crate::collection::Collection;
use crate::compaction::winner::RANK_COLUMNS;
use crate::decoded_object::{Member, ObjectView};
use crate::mapping::Rejection;
use crate::mapping::email_properties::email_spec_properties;
use crate::segment::klaviyo_context::{INTEGRATION_NAME, KlaviyoContext, KlaviyoMember};
use crate::segment::track::{Properties, TrackEvent};
use crate::time_format::{format_timestamp, partition_date};

/// Where a row is stored: `collection=<collection>/dt=<dt>/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    /// The collection slug (the table).
    pub collection: String,
    /// The UTC date of the row's `timestamp`, `YYYY-MM-DD`.
    pub dt: String,
}

impl PartitionKey {
    /// The partition of a row whose `event` and `timestamp` columns are these, derived the
    /// way the delivery stream's JQ query derives it: `collection` = `event`, `dt` = the
    /// first ten characters of `timestamp`; `None` when `timestamp` is shorter.
    pub fn of_row(event: &str, timestamp: &str) -> Option<Self> {
        Some(Self {
            collection: event.to_owned(),
            dt: timestamp.get(..10)?.to_owned(),
        })
    }
}

/// One warehouse row, already written as the JSON object the tables store (the rank columns
/// first, then the others by name), and the partition it belongs in. Rows are written once, when they are made:
/// every sink sends or stores exactly these bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WarehouseRow {
    /// Its partition, equal to what the Firehose JQ query extracts from the columns.
    pub partition: PartitionKey,
    id: String,
    json: Vec<u8>,
}

impl std::fmt::Debug for WarehouseRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarehouseRow")
            .field("partition", &self.partition)
            .field("json", &String::from_utf8_lossy(&self.json))
            .finish()
    }
}

impl WarehouseRow {
    /// The row's `id` column (the messageId).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The row as one compact JSON object (no line break).
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The row's columns, read back from its JSON (for checks and tools, not the hot path).
    pub fn columns(&self) -> Result<Map<String, Value>, serde_json::Error> {
        serde_json::from_slice(&self.json)
    }

    /// Rebuilds a row from its columns (a line read back from the lake or the dead-letter
    /// store). The partition is derived the way the delivery stream's JQ query derives it:
    /// `collection` = `event`, `dt` = the first ten characters of `timestamp`.
    pub fn from_columns(columns: Map<String, Value>) -> Option<Self> {
        let partition = PartitionKey::of_row(
            columns.get("event")?.as_str()?,
            columns.get("timestamp")?.as_str()?,
        )?;
        let id = columns
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut json = Vec::with_capacity(1024);
        write_row_object(&mut json, &columns);
        Some(Self {
            partition,
            id,
            json,
        })
    }
}

/// Writes `columns` as a row's JSON object, in the order the row writer uses: the rank
/// columns first, then the others by name (the map's order), so a row read back and written
/// again is the same text.
fn write_row_object(out: &mut Vec<u8>, columns: &Map<String, Value>) {
    let leading = RANK_COLUMNS
        .iter()
        .filter_map(|name| columns.get_key_value(*name));
    let rest = columns
        .iter()
        .filter(|(name, _)| !RANK_COLUMNS.contains(&name.as_str()));
    out.push(b'{');
    for (position, (name, value)) in leading.chain(rest).enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_json_str(out, name);
        out.push(b':');
        write_json_value(out, value);
    }
    out.push(b'}');
}

#[cfg(any(test, feature = "test-doubles"))]
impl WarehouseRow {
    /// A row with only `event` (= `collection`), `id` and a `timestamp` on `dt`: for tests
    /// (of this crate, and of others through the `test-doubles` feature).
    #[allow(
        clippy::unwrap_used,
        reason = "a test constructor whose columns always form a row"
    )]
    pub fn minimal(collection: &str, dt: &str, id: &str) -> Self {
        let mut columns = Map::new();
        columns.insert("event".into(), Value::from(collection));
        columns.insert("id".into(), Value::from(id));
        columns.insert(
            "timestamp".into(),
            Value::from(format!("{dt}T00:00:00.000Z")),
        );
        Self::from_columns(columns).unwrap()
    }
}

/// The row for a track event, written by `writer`. Its columns are written straight from the
/// event's fields and property values. `loaded_at` is the load time as rows store it
/// ([`format_timestamp`]), formatted once per request.
pub fn track_row(writer: &mut RowWriter, event: &TrackEvent, loaded_at: &str) -> WarehouseRow {
    writer.push("id", Cell::Text(&event.message_id));
    writer.push("event", Cell::Text(&event.collection_slug));
    writer.push("event_text", Cell::Text(&event.event));
    writer.push("user_id", Cell::optional(event.user_id.as_deref()));
    writer.push(
        "anonymous_id",
        Cell::optional(event.anonymous_id.as_deref()),
    );
    writer.push("timestamp", Cell::Text(&event.timestamp));
    writer.push("original_timestamp", Cell::Text(&event.original_timestamp));
    writer.push("sent_at", Cell::optional(event.sent_at.as_deref()));
    writer.push("received_at", Cell::Text(&event.received_at));
    writer.push("uuid_ts", Cell::Text(loaded_at));
    if let Some(klaviyo) = &event.klaviyo {
        push_klaviyo_context(writer, klaviyo);
    }
    let mut prefix = String::with_capacity(64);
    prefix.push_str("context_");
    flatten_into(writer, &mut prefix, &event.context);
    prefix.clear();
    match &event.properties {
        Properties::Segment(properties) => flatten_into(writer, &mut prefix, properties),
        Properties::Klaviyo(klaviyo) => {
            // The Email spec properties and `properties.klaviyo`: an event from Klaviyo has no
            // other property, and no spec name starts with `klaviyo`, so no two names collide
            // and the order they are pushed in changes nothing.
            for (spec_name, value) in email_spec_properties(&event.collection_slug, klaviyo) {
                writer.push(spec_name, Cell::Text(value));
            }
            prefix.push_str("klaviyo_");
            flatten_decoded_into(writer, &mut prefix, klaviyo.view());
        }
    }
    let json = writer.finish();
    WarehouseRow {
        partition: PartitionKey {
            // Timestamps are always written in UTC, so the first ten characters are the date.
            dt: event.timestamp.get(..10).unwrap_or_default().to_owned(),
            collection: event.collection_slug.clone(),
        },
        id: event.message_id.clone(),
        json,
    }
}

/// The row for an event that could not be mapped: its reason and exact JSON, stored in the
/// rejected collection under the date it was received. `loaded_at` as in [`track_row`].
pub fn rejected_row(
    writer: &mut RowWriter,
    rejection: &Rejection,
    loaded_at: &str,
) -> WarehouseRow {
    let collection = Collection::rejected();
    let received = format_timestamp(rejection.received_at);
    writer.push("id", Cell::Text(&rejection.message_id));
    writer.push("event", Cell::Text(collection.slug()));
    writer.push("event_text", Cell::Text(collection.event_name()));
    writer.push("timestamp", Cell::Text(&received));
    writer.push("received_at", Cell::Text(&received));
    writer.push("uuid_ts", Cell::Text(loaded_at));
    writer.push("reason", Cell::Text(&rejection.reason));
    writer.push("raw_event", Cell::Text(&rejection.raw));
    writer.push("request_index", Cell::Count(rejection.index));
    writer.push("source", Cell::Text(rejection.source));
    writer.push(
        "context_klaviyo_webhook_id",
        Cell::optional(rejection.webhook_id.as_deref()),
    );
    WarehouseRow {
        partition: PartitionKey {
            collection: collection.slug().to_owned(),
            dt: partition_date(rejection.received_at),
        },
        id: rejection.message_id.clone(),
        json: writer.finish(),
    }
}

/// Adds the columns of a Klaviyo event's `context.integration` and `context.klaviyo`, named
/// and ordered as the flattened JSON members would be (they come before any other context
/// member: `integration` and `klaviyo` sort before `traits`).
fn push_klaviyo_context(writer: &mut RowWriter, klaviyo: &KlaviyoContext) {
    writer.push("context_integration_name", Cell::Text(INTEGRATION_NAME));
    if let Some(version) = &klaviyo.integration_version {
        writer.push("context_integration_version", Cell::Text(version));
    }
    for (key, member) in klaviyo.klaviyo_members() {
        let cell = match member {
            KlaviyoMember::Text(text) => Cell::Text(text),
            KlaviyoMember::Flag(flag) => Cell::Flag(flag),
        };
        writer.push_keyed("context_klaviyo_", key, cell);
    }
}

/// Adds the columns of `object`, flattened: each named `prefix` (empty at the top level,
/// else ending in `_`) followed by its key's column name. A nested object's members go
/// below `prefix`, its key's name and `_`; `prefix` is the buffer that builds those.
fn flatten_into(writer: &mut RowWriter, prefix: &mut String, object: &Map<String, Value>) {
    for (key, value) in object {
        let cell = match value {
            Value::Object(nested) => {
                flatten_nested(prefix, key, |prefix| flatten_into(writer, prefix, nested));
                continue;
            }
            Value::Array(_) => {
                writer.push_keyed(prefix, key, Cell::JsonAsText(&value.to_string()));
                continue;
            }
            Value::Null => Cell::Null,
            Value::Bool(flag) => Cell::Flag(*flag),
            Value::Number(number) => Cell::Number(number.as_str()),
            Value::String(text) => Cell::Text(text),
        };
        writer.push_keyed(prefix, key, cell);
    }
}

/// [`flatten_into`] for a decoded object.
fn flatten_decoded_into(writer: &mut RowWriter, prefix: &mut String, object: ObjectView<'_>) {
    for (key, member) in object.iter() {
        let cell = match member {
            Member::Object(nested) => {
                flatten_nested(prefix, key, |prefix| {
                    flatten_decoded_into(writer, prefix, nested)
                });
                continue;
            }
            Member::Null => Cell::Null,
            Member::Flag(flag) => Cell::Flag(flag),
            Member::Number(number) => Cell::Number(number),
            Member::Text(text) => Cell::Text(text),
            Member::ArrayJson(json) => Cell::JsonAsText(json),
        };
        writer.push_keyed(prefix, key, cell);
    }
}

/// Runs `flatten` with `prefix` extended by `key`'s column name and `_`, then restores it.
fn flatten_nested(prefix: &mut String, key: &str, flatten: impl FnOnce(&mut String)) {
    let prefix_len = prefix.len();
    push_column_name(prefix, key);
    prefix.push('_');
    flatten(prefix);
    prefix.truncate(prefix_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_the_event_and_the_timestamps_first_ten_characters() {
        let key = PartitionKey::of_row("email_opened", "2024-01-04T18:05:01.000Z").unwrap();
        assert_eq!(
            (key.collection.as_str(), key.dt.as_str()),
            ("email_opened", "2024-01-04")
        );
        // Too short, or cut inside a character: no partition, and no panic.
        assert_eq!(PartitionKey::of_row("e", "2024-01-0"), None);
        assert_eq!(PartitionKey::of_row("e", "2024-01-0é…"), None);
    }
    use crate::segment::klaviyo_context::KlaviyoContext;
    use serde_json::json;

    fn event(properties: Value, context: Value) -> TrackEvent {
        TrackEvent {
            kind: TrackEvent::KIND,
            message_id: "klaviyo-1".into(),
            event: "Email Opened".into(),
            collection_slug: "email_opened".into(),
            user_id: None,
            klaviyo: None,
            anonymous_id: Some("01PROFILE".into()),
            properties: Properties::Segment(properties.as_object().unwrap().clone()),
            context: context.as_object().unwrap().clone(),
            timestamp: "2023-08-10T07:21:56.000Z".into(),
            original_timestamp: "2023-08-10T07:21:56.000Z".into(),
            integrations: Map::new(),
            sent_at: None,
            received_at: "2023-08-10T07:22:00.000Z".into(),
        }
    }

    fn loaded() -> &'static str {
        "2023-08-10T07:22:01.000Z"
    }

    #[test]
    fn decoded_klaviyo_properties_write_the_row_a_map_of_them_writes() {
        let klaviyo = r#"{"$message": "M1", "Subject": "", "URL": "https://x.test/?a=1&b=\u00e9",
            "$link_id": 7, "Campaign Name": "Spring", "campaign name": "twice", "a b": 1,
            "a_b": [1, "x\"y", {"z": 1E5, "a": null}], "nested": {"Deep Key": {"x": true},
            "deep_key_x": false}, "big": 123456789012345678901234567890, "e": -2.5E-3,
            "dt": "partition", "k": 1, "k": "last", "": "empty key"}"#;
        let mut decoded = event(json!({}), json!({}));
        decoded.collection_slug = "email_link_clicked".into();
        decoded.properties = Properties::Klaviyo(serde_json::from_str(klaviyo).unwrap());
        // The same event as one map: the spec properties its mapping used to copy, and the
        // properties under `klaviyo`.
        let mut mapped = event(
            json!({"email_id": "M1", "campaign_id": "M1", "campaign_name": "Spring",
                   "link_url": "https://x.test/?a=1&b=é", "link_id": "7",
                   "klaviyo": serde_json::from_str::<Value>(klaviyo).unwrap()}),
            json!({}),
        );
        mapped.collection_slug = "email_link_clicked".into();
        let decoded_row = track_row(&mut RowWriter::default(), &decoded, loaded());
        let mapped_row = track_row(&mut RowWriter::default(), &mapped, loaded());
        assert_eq!(
            String::from_utf8_lossy(decoded_row.json()),
            String::from_utf8_lossy(mapped_row.json())
        );
        let columns = decoded_row.columns().unwrap();
        assert_eq!(columns["klaviyo_a_b"], 1);
        assert_eq!(
            columns["klaviyo_a_b_2"],
            r#"[1,"x\"y",{"a":null,"z":1e+5}]"#
        );
        assert_eq!(columns["klaviyo_k"], "last");
    }

    #[test]
    fn numbers_are_kept_exactly_as_sent() {
        let properties: Value = serde_json::from_str(
            r#"{"big": 123456789012345678901234567890, "precise": 0.1000000000000000055511151231257827, "id": 18446744073709551617}"#,
        )
        .unwrap();
        let row = track_row(
            &mut RowWriter::default(),
            &event(properties, json!({})),
            loaded(),
        );
        let line = String::from_utf8(row.json().to_vec()).unwrap();
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
            &mut RowWriter::default(),
            &event(json!({"dt": "x", "collection": "y"}), json!({})),
            loaded(),
        );
        let columns = row.columns().unwrap();
        assert_eq!(columns.get("dt_2"), Some(&json!("x")));
        assert_eq!(columns.get("collection_2"), Some(&json!("y")));
        assert!(!columns.contains_key("dt") && !columns.contains_key("collection"));
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
        let row = track_row(
            &mut RowWriter::default(),
            &event(Value::Object(properties), json!({})),
            loaded(),
        );
        let columns = row.columns().unwrap();
        assert!(columns.contains_key("a"));
        assert!(columns.contains_key(&format!("a_{count}")));
        assert!(
            !row.columns()
                .unwrap()
                .contains_key(&format!("a_{}", count + 1))
        );
    }

    #[test]
    fn a_row_read_back_has_the_same_partition() {
        let row = track_row(
            &mut RowWriter::default(),
            &event(json!({}), json!({})),
            loaded(),
        );
        assert_eq!(
            WarehouseRow::from_columns(row.columns().unwrap()),
            Some(row)
        );
        assert_eq!(WarehouseRow::from_columns(Map::new()), None);
    }

    #[test]
    fn writes_segment_common_columns_and_partition() {
        let row = track_row(
            &mut RowWriter::default(),
            &event(json!({}), json!({})),
            loaded(),
        );
        assert_eq!(
            row.partition,
            PartitionKey {
                collection: "email_opened".into(),
                dt: "2023-08-10".into()
            }
        );
        assert_eq!(
            Value::Object(row.columns().unwrap()),
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
            &mut RowWriter::default(),
            &event(
                json!({"klaviyo": {"$group_ids": [1, "a"], "$attribution": {"$flow": "F1"}, "machine_open": true}}),
                json!({"integration": {"name": "klaviyo"}, "userAgent": "UA"}),
            ),
            loaded(),
        );
        let columns = row.columns().unwrap();
        assert_eq!(columns["klaviyo_group_ids"], json!("[1,\"a\"]"));
        assert_eq!(columns["klaviyo_attribution_flow"], json!("F1"));
        assert_eq!(columns["klaviyo_machine_open"], json!(true));
        assert_eq!(columns["context_integration_name"], json!("klaviyo"));
        assert_eq!(columns["context_user_agent"], json!("UA"));
    }

    #[test]
    fn a_klaviyo_context_gives_the_columns_its_json_form_flattens_to() {
        let mut typed = event(
            json!({"klaviyo": {"Subject": "Hi"}}),
            json!({"traits": {"email": "a@example.com"}}),
        );
        typed.klaviyo = Some(KlaviyoContext {
            integration_version: Some("2024-10-15".into()),
            profile_id: "01PROFILE".into(),
            identity_resolved: true,
            topic: "event:klaviyo.opened_email".into(),
            source: "webhook",
            webhook_id: Some("wh".into()),
            event_id: Some("E1".into()),
            event_uuid: Some("U1".into()),
            external_id: Some("X1".into()),
            metric_id: Some("M1".into()),
            account_id: Some("A1".into()),
        });
        let mut as_json = typed.clone();
        as_json.context = typed.context_json();
        as_json.klaviyo = None;
        let typed_row = track_row(&mut RowWriter::default(), &typed, loaded());
        let json_row = track_row(&mut RowWriter::default(), &as_json, loaded());
        assert_eq!(typed_row, json_row);
        let columns = typed_row.columns().unwrap();
        assert_eq!(columns["context_klaviyo_identity_resolved"], json!(true));
        assert_eq!(columns["context_integration_name"], json!("klaviyo"));
        assert_eq!(columns["context_traits_email"], json!("a@example.com"));
        assert_eq!(columns.len(), 10 + 2 + 10 + 1 + 1);
    }

    #[test]
    fn keeps_both_values_when_keys_collide() {
        let row = track_row(
            &mut RowWriter::default(),
            &event(
                json!({"klaviyo": {"Campaign Name": "A", "campaign_name": "B"}}),
                json!({}),
            ),
            loaded(),
        );
        let columns = row.columns().unwrap();
        assert_eq!(columns["klaviyo_campaign_name"], json!("A"));
        assert_eq!(columns["klaviyo_campaign_name_2"], json!("B"));
    }

    #[test]
    fn properties_never_overwrite_common_columns() {
        let row = track_row(
            &mut RowWriter::default(),
            &event(json!({"id": "evil", "timestamp": "x"}), json!({})),
            loaded(),
        );
        let columns = row.columns().unwrap();
        assert_eq!(columns["id"], json!("klaviyo-1"));
        assert_eq!(columns["id_2"], json!("evil"));
        assert_eq!(columns["timestamp_2"], json!("x"));
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
            received_at: crate::time_format::parse_iso_datetime(loaded()).unwrap(),
        };
        let row = rejected_row(&mut RowWriter::default(), &rejection, loaded());
        let columns = row.columns().unwrap();
        assert_eq!(row.partition.collection, "rejected_events");
        assert_eq!(row.partition.dt, "2023-08-10");
        assert_eq!(columns["raw_event"], json!(r#"{"payload":{}}"#));
        assert_eq!(columns["request_index"], json!(3));
        assert_eq!(row.id(), "klaviyo-rejected-abc");
    }
}
