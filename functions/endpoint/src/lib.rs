//! The Klaviyo Source endpoint: one axum [`Router`](axum::Router) that AWS Lambda serves
//! through `lambda_http` (this crate's binary) and that the command line's `serve` serves
//! locally. There is exactly one implementation of the request path; only the listener
//! differs.

pub mod answer;
pub mod api_error;
pub mod app;
pub mod observe;
pub mod request_body;
pub mod segment_route;
pub mod webhook_route;
