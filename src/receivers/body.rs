//! Reading HTTP request bodies safely, for every HTTP receiver: the size limit
//! is enforced on the body as sent *and* after gzip decompression, so a small
//! body that inflates enormously costs at most the limit.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use flate2::read::GzDecoder;

use super::ExportError;
use crate::ingest::{Ingest, Reservation};

/// Whether the body is gzip; identity or no `Content-Encoding` is plain.
pub fn is_gzip(headers: &HeaderMap) -> Result<bool, ExportError> {
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => Ok(false),
        Some(encoding) if encoding.is_empty() || encoding == "identity" => Ok(false),
        Some(encoding) if encoding == "gzip" => Ok(true),
        Some(other) => Err(ExportError::UnsupportedEncoding(other)),
    }
}

/// Reads the body, refusing as soon as it passes `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ExportError> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ExportError::TooLarge { limit })
        }
        Err(error) => Err(ExportError::Malformed(format!("reading the body: {error}"))),
    }
}

/// Inflates gzip, stopping one byte past `limit` so a bomb costs at most `limit`.
pub fn gunzip_limited(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::with_capacity((compressed.len() * 4).min(limit));
    GzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ExportError::Malformed(format!("gzip: {e}")))?;
    if out.len() > limit {
        return Err(ExportError::TooLarge { limit });
    }
    Ok(out)
}

/// Reads a request body within `limit`, inflating gzip as `headers` say, with
/// the in-flight budget reserved for what is held; the reservations must live
/// as long as the bytes they cover.
pub async fn read_reserved(
    ingest: &Ingest,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(Bytes, Vec<Reservation>), ExportError> {
    let gzip = is_gzip(headers)?;
    let raw = read_limited(body, limit).await?;
    let mut reservations = vec![ingest.reserve(raw.len())?];
    if !gzip {
        return Ok((raw, reservations));
    }
    let inflated = gunzip_limited(&raw, limit)?;
    reservations.push(ingest.reserve(inflated.len())?);
    Ok((Bytes::from(inflated), reservations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzip_within_the_limit() {
        assert_eq!(gunzip_limited(&gzip(b"hello"), 5).unwrap(), b"hello");
    }

    #[test]
    fn gunzip_past_the_limit_is_too_large() {
        assert!(matches!(
            gunzip_limited(&gzip(&[0u8; 10_000]), 9_999),
            Err(ExportError::TooLarge { limit: 9_999 })
        ));
    }

    #[test]
    fn broken_gzip_is_malformed() {
        assert!(matches!(
            gunzip_limited(b"not gzip at all", 100),
            Err(ExportError::Malformed(_))
        ));
    }
}
