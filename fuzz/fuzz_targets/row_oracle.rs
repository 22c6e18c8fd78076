//! The oracle both targets apply to every row they make.

/// The columns a row starts with, in this order, when it has them (the compaction ranks a
/// copy by them without reading the rest); every other column follows, sorted by name.
/// Spelled out here rather than imported, so the oracle checks the writer against the
/// documented order (docs/tables.md), not against itself.
const LEADING: [&str; 3] = ["id", "received_at", "context_klaviyo_identity_resolved"];

/// The rows are written by the crate's own JSON writer: read back by serde_json, a row must
/// be one object, and serde_json must write that object back byte for byte when its members
/// are put in the documented order.
pub fn assert_written_as_serde_json_writes_it(json: &[u8]) {
    let mut parsed: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(json) {
        Ok(parsed) => parsed,
        Err(err) => panic!("a row is not a JSON object ({err}): {}", String::from_utf8_lossy(json)),
    };
    let mut members: Vec<(String, serde_json::Value)> = Vec::with_capacity(parsed.len());
    for name in LEADING {
        if let Some(value) = parsed.remove(name) {
            members.push((name.to_owned(), value));
        }
    }
    // serde_json's map (without `preserve_order`) iterates by name.
    members.extend(parsed);
    let mut expected = b"{".to_vec();
    for (index, (name, value)) in members.iter().enumerate() {
        if index > 0 {
            expected.push(b',');
        }
        expected.extend(serde_json::to_vec(name).expect("a string serialises"));
        expected.push(b':');
        expected.extend(serde_json::to_vec(value).expect("a value serialises"));
    }
    expected.push(b'}');
    assert_eq!(String::from_utf8_lossy(&expected), String::from_utf8_lossy(json));
}
