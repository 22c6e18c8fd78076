//! The template's JQ query, run by Debian's jq 1.6 (the engine Firehose names JQ-1.6), must
//! extract exactly the partition keys the Rust code computes, for every fixture row.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

/// The `MetadataExtractionQuery` parameter value in template.yaml.
fn template_query() -> String {
    let template = std::fs::read_to_string(fixtures_dir().join("../../template.yaml")).unwrap();
    let mut lines = template.lines();
    lines
        .by_ref()
        .find(|line| line.contains("ParameterName: MetadataExtractionQuery"))
        .expect("template has a MetadataExtractionQuery");
    let value = lines.next().unwrap().trim();
    let quoted = value.strip_prefix("ParameterValue:").unwrap().trim();
    quoted.trim_matches('\'').to_owned()
}

fn jq(query: &str, input: &[u8]) -> Vec<serde_json::Value> {
    let mut child = Command::new("jq")
        .args(["-c", query])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("jq must be installed (tests/run.sh installs Debian's jq 1.6)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Needs Debian's jq 1.6 on the PATH, so a plain `cargo test` elsewhere skips it by name;
/// the README's test command installs jq 1.6 and runs it with `--include-ignored`.
#[tokio::test]
#[ignore = "needs Debian's jq 1.6; tests/run.sh runs it with --include-ignored"]
async fn jq_extracts_the_partition_the_rust_code_computes() {
    let version = Command::new("jq")
        .arg("--version")
        .output()
        .expect("jq installed");
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), "jq-1.6");
    let query = template_query();
    assert_eq!(query, "{collection: .event, dt: .timestamp[0:10]}");
    let mut checked = 0;
    let mut sent = 0;
    for name in std::fs::read_dir(fixtures_dir().join("webhooks")).unwrap() {
        let name = name.unwrap().file_name().into_string().unwrap();
        let (app, sink) = memory_app();
        let (status, _, _) = send(&app, signed_request(&fixture(&name), CURRENT_KEY)).await;
        assert_eq!(status, 200, "{name}");
        let rows = sink.rows();
        sent += fixture_json(&name)["data"].as_array().unwrap().len();
        let mut ndjson = Vec::new();
        for row in &rows {
            source_core::warehouse::ndjson::write_ndjson_line(&mut ndjson, row);
        }
        let extracted = jq(&query, &ndjson);
        assert_eq!(extracted.len(), rows.len(), "{name}");
        for (row, keys) in rows.iter().zip(extracted) {
            assert_eq!(
                keys["collection"],
                row.partition.collection.as_str(),
                "{name}"
            );
            assert_eq!(keys["dt"], row.partition.dt.as_str(), "{name}");
            checked += 1;
        }
    }
    assert_eq!(checked, sent, "every fixture event checked");
    assert!(checked > 20, "only {checked} rows checked");
}
