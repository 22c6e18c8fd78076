//! The oracle both targets apply to every row they make.

/// The rows are written by the crate's own JSON writer: read back by serde_json, a row must
/// be one object, and serde_json must write that object back byte for byte.
pub fn assert_written_as_serde_json_writes_it(json: &[u8]) {
    let parsed: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(json) {
        Ok(parsed) => parsed,
        Err(err) => panic!("a row is not a JSON object ({err}): {}", String::from_utf8_lossy(json)),
    };
    assert_eq!(serde_json::to_vec(&parsed).ok().as_deref(), Some(json));
}
