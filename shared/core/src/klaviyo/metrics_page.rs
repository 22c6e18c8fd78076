//! One page of Klaviyo's `GET /api/metrics`: the account's metric ids, names and the
//! integration each belongs to.

use serde::Deserialize;

use crate::klaviyo::json_api::{LinksWire, next_link};

/// One metric of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMetric {
    /// Klaviyo's metric id (the `metric_id` filter of `GET /api/events`).
    pub id: String,
    /// `attributes.name`, e.g. "Opened Email".
    pub name: String,
    /// `attributes.integration.key`: `klaviyo` for Klaviyo's own metrics. Names are not
    /// unique (a custom metric can be called "Clicked Email" too), the key tells them apart.
    pub integration_key: Option<String>,
}

impl AccountMetric {
    /// Whether Klaviyo itself records this metric.
    pub fn is_klaviyos_own(&self) -> bool {
        self.integration_key.as_deref() == Some("klaviyo")
    }
}

/// A decoded page of metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsPage {
    /// The metrics on the page.
    pub metrics: Vec<AccountMetric>,
    /// `links.next`, if there is another page.
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct PageWire {
    #[serde(default)]
    data: Vec<MetricWire>,
    #[serde(default)]
    links: Option<LinksWire>,
}

#[derive(Deserialize)]
struct MetricWire {
    id: String,
    #[serde(default)]
    attributes: AttributesWire,
}

#[derive(Deserialize, Default)]
struct AttributesWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    integration: Option<IntegrationWire>,
}

#[derive(Deserialize)]
struct IntegrationWire {
    #[serde(default)]
    key: Option<String>,
}

/// Parses one page of `GET /api/metrics`.
pub fn parse_metrics_page(body: &[u8]) -> Result<MetricsPage, serde_json::Error> {
    let page: PageWire = serde_json::from_slice(body)?;
    Ok(MetricsPage {
        metrics: page
            .data
            .into_iter()
            .map(|metric| AccountMetric {
                id: metric.id,
                name: metric.attributes.name.unwrap_or_default(),
                integration_key: metric.attributes.integration.and_then(|i| i.key),
            })
            .collect(),
        next: next_link(page.links),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_klaviyos_own_metrics_from_custom_ones_of_the_same_name() {
        let body = r#"{"data": [
            {"type": "metric", "id": "SxR9Bt", "attributes": {"name": "Clicked Email",
             "integration": {"object": "integration", "id": "0rG4eQ", "key": "klaviyo"}}},
            {"type": "metric", "id": "VFFb4u", "attributes": {"name": "Clicked Email",
             "integration": {"object": "integration", "id": "7FtS4J", "key": "api"}}}],
            "links": {"next": ""}}"#;
        let page = parse_metrics_page(body.as_bytes()).unwrap();
        assert!(page.metrics[0].is_klaviyos_own());
        assert!(!page.metrics[1].is_klaviyos_own());
        assert_eq!(page.next, None);
    }
}
