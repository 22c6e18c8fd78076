//! The one way this crate opens connections: hyper over rustls (ring) with the system's
//! root certificates, HTTP/1.1. Klaviyo's API, the AWS SDKs and the S3 calls all use it.

use std::time::Duration;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

/// A connector whose TCP connects give up after `connect_timeout`. Plain `http://` is
/// allowed only because tests point base URLs and endpoint overrides at local doubles and
/// emulators; every deployed URL is `https://`.
pub fn https_connector(
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>, std::io::Error> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(connect_timeout));
    Ok(HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp))
}
