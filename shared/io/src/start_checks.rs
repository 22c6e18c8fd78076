//! Checks at cold start that the configured AWS resources are there, so a wrong stream name
//! is reported once, clearly, instead of being found by every request spilling.
//!
//! A stream that does not exist fails the start: nothing could ever be delivered, and a
//! failed start acknowledges nothing (API Gateway answers 5xx, Klaviyo retries later). Any
//! other finding (no access to the dead-letter prefix, a stream not ACTIVE, a check that
//! could not run) is logged as an error and the function starts: requests then spill or
//! answer 503, and nothing acknowledged is lost.

use aws_sdk_firehose::types::DeliveryStreamStatus;

use crate::config::FirehoseConfig;
use crate::s3_objects::S3Objects;
use crate::start_error::StartError;

/// Runs the checks for the Firehose sink.
pub async fn check_firehose_resources(
    firehose: &aws_sdk_firehose::Client,
    s3: &S3Objects,
    config: &FirehoseConfig,
) -> Result<(), StartError> {
    match firehose
        .describe_delivery_stream()
        .delivery_stream_name(&config.stream)
        .send()
        .await
    {
        Ok(output) => {
            let status = output
                .delivery_stream_description()
                .map(|d| d.delivery_stream_status().clone());
            if status != Some(DeliveryStreamStatus::Active) {
                tracing::error!(
                    stream = %config.stream,
                    status = ?status,
                    "the delivery stream is not ACTIVE: requests will spill to the dead-letter prefix until it is"
                );
            }
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Err(StartError::NoSuchStream(config.stream.clone()));
        }
        Err(err) => tracing::error!(
            stream = %config.stream,
            error = %aws_sdk_firehose::error::DisplayErrorContext(err),
            "could not check the delivery stream at start"
        ),
    }
    if let Err(err) = s3
        .list_one(&config.dead_letter_bucket, &config.dead_letter_prefix)
        .await
    {
        tracing::error!(
            bucket = %config.dead_letter_bucket,
            prefix = %config.dead_letter_prefix,
            error = %err,
            "the dead-letter prefix is not reachable: undeliverable rows could not be spilled and such requests will answer 503"
        );
    }
    Ok(())
}
