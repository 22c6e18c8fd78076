//! The I/O library every function of the Klaviyo Source uses: configuration, AWS and
//! Klaviyo clients, the sinks, the one rows-and-delivery step of every intake, the pull run,
//! metrics and logging. No HTTP server and no command line: those are the functions'.

pub mod app_state;
pub mod aws_clients;
pub mod config;
pub mod discarding_sink;
pub mod firehose;
pub mod firehose_api;
pub mod https_connector;
pub mod identity;
pub mod klaviyo_http;
pub mod metrics;
pub mod pipeline;
pub mod profiles_api;
pub mod pull;
pub mod request_deadline;
pub mod s3_dead_letter;
pub mod s3_lake;
pub mod s3_objects;
pub mod sdk_http;
pub mod settings;
pub mod sink;
pub mod start_checks;
pub mod start_error;
pub mod startup;
pub mod tables;
pub mod telemetry;
pub mod write_key_secret;
