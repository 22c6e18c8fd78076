//! The AWS SDK's HTTP client: the same hyper + rustls (ring, the system's roots) HTTP/1.1
//! client the Klaviyo calls use, instead of the SDK's own client, which always builds in an
//! HTTP/2 stack (h2) none of our calls use. Firehose, S3 and Secrets Manager all speak
//! HTTP/1.1. The SDK keeps its own retries, attempt and operation timeouts; this client
//! applies a connect timeout and sorts failures into the kinds the SDK's retry rules read.

use std::fmt;
use std::time::Duration;

use aws_sdk_firehose::config::{HttpClient, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;

use crate::https_connector::https_connector;

/// The client handed to the SDK configuration; TCP connects give up after
/// `connect_timeout`.
pub fn sdk_https_client(connect_timeout: Duration) -> Result<SharedHttpClient, std::io::Error> {
    let connector = https_connector(connect_timeout)?;
    Ok(SharedHttpClient::new(Http1Client {
        connector: Http1Connector {
            client: Client::builder(TokioExecutor::new()).build(connector),
        },
    }))
}

type HttpsClient = Client<HttpsConnector<TcpConnector>, SdkBody>;

/// Hands the SDK the one connector (its pool is shared by every call).
struct Http1Client {
    connector: Http1Connector,
}

impl fmt::Debug for Http1Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Http1Client")
    }
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.connector.clone())
    }
}

/// Sends one request of the SDK's.
#[derive(Clone)]
struct Http1Connector {
    client: HttpsClient,
}

impl fmt::Debug for Http1Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Http1Connector")
    }
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|err| ConnectorError::user(err.into()))?;
            let response = client.request(request).await.map_err(classify)?;
            let response = response.map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

/// Every failure of the client is of the connection (refused, reset, closed early, TLS): the
/// SDK retries those as transient. A connect that timed out is reported as a timeout.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let mut source = std::error::Error::source(&err);
    let mut timed_out = false;
    while let Some(cause) = source {
        timed_out |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        source = cause.source();
    }
    if timed_out {
        ConnectorError::timeout(err.into())
    } else {
        ConnectorError::io(err.into())
    }
}
