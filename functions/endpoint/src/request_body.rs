//! Reading a JSON request body: the content type and the size limit, checked before
//! anything else looks at the bytes.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::api_error::ApiError;

/// Time a client has to send the whole body once its headers are in: a stalled upload must
/// not hold memory and a connection forever. Lambda hands over bodies whole, so this only
/// matters for `klaviyo-source serve`.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Accepts `application/json` with any parameters (`; charset=utf-8`), in any case.
pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Reads the whole body, refusing it (413) as soon as it passes `limit` bytes, whether or
/// not a `Content-Length` announced it. A body sent with `Content-Encoding: gzip` (as
/// Segment's libraries do with compression on) is decompressed, and the limit applies to
/// the decompressed bytes too: a small body that inflates past it is 413, never a memory
/// blow-up.
pub async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let gzipped = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => return Err(ApiError::UnsupportedContentEncoding(other.to_owned())),
    };
    let bytes = tokio::time::timeout(BODY_READ_TIMEOUT, read_raw_limited(body, headers, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout)??;
    if gzipped {
        gunzip_limited(&bytes, limit)
    } else {
        Ok(bytes)
    }
}

/// Decompresses `compressed`, refusing output past `limit` bytes as soon as it gets there.
fn gunzip_limited(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|_| ApiError::MalformedGzip)?;
    if inflated.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(inflated))
}

async fn read_raw_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(_) => Err(ApiError::BodyRead),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn inflates_gzip_within_the_limit_and_refuses_a_bomb() {
        assert_eq!(&gunzip_limited(&gzip(b"{}"), 10).unwrap()[..], b"{}");
        // 10 MB of zeros compress to about 10 KB.
        let bomb = gzip(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 20_000);
        assert!(matches!(
            gunzip_limited(&bomb, 4 * 1024 * 1024),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            gunzip_limited(b"not gzip", 100),
            Err(ApiError::MalformedGzip)
        ));
    }
}
