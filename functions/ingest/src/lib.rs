//! The Klaviyo Source endpoint: one axum [`Router`](axum::Router) that AWS Lambda serves
//! through `lambda_http` and that `bootstrap serve` serves locally. There is exactly one
//! implementation of the request path; only the listener differs.

pub mod api_error;
pub mod app;
pub mod aws_clients;
pub mod cli;
pub mod config;
pub mod discarding_sink;
pub mod firehose_api;
pub mod https_connector;
pub mod klaviyo_api;
pub mod klaviyo_http;
pub mod local_server;
pub mod metrics;
pub mod observe;
pub mod pipeline;
pub mod pull;
pub mod redrive;
pub mod request_body;
pub mod request_deadline;
pub mod s3_dead_letter;
pub mod s3_lake;
pub mod s3_objects;
pub mod sdk_http;
pub mod segment_route;
pub mod setting_flags;
pub mod settings;
pub mod start_checks;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhook_route;
pub mod write_key_secret;
