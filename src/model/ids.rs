//! Trace and span identifiers.
//!
//! `TraceId` is 16 bytes and `SpanId` 8, as in OpenTelemetry. Both display as
//! lowercase hex. A trace id also parses from the AWS X-Ray form
//! `1-5759e988-bd862e3fe1be46a994272793`, mapped exactly as the OpenTelemetry
//! X-Ray propagator maps it (the epoch part and the random part concatenated),
//! so a trace crossing OTel and X-Ray instrumented services is one trace.

use std::fmt;
use std::str::FromStr;

/// Why an identifier could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
    #[error("identifier is all zeros")]
    AllZeros,
    #[error("identifier is not hex")]
    NotHex,
}

macro_rules! define_id {
    ($name:ident, $len:expr, $what:literal) => {
        #[doc = concat!("A ", $what, " (", stringify!($len), " bytes, never all zeros once validated).")]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Reads an id from its wire bytes, rejecting a wrong length and all zeros
            /// as the OTLP specification requires.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::WrongLength {
                    expected: $len,
                    got: bytes.len(),
                })?;
                if array == [0u8; $len] {
                    return Err(IdError::AllZeros);
                }
                Ok(Self(array))
            }

            /// Parses lowercase or uppercase hex of exactly twice the byte length.
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                if text.len() != $len * 2 {
                    return Err(IdError::WrongLength {
                        expected: $len,
                        got: text.len() / 2,
                    });
                }
                let mut array = [0u8; $len];
                hex::decode_to_slice(text, &mut array).map_err(|_| IdError::NotHex)?;
                Self::from_bytes(&array)
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; $len * 2];
                // Cannot fail: the buffer is exactly twice the id length.
                hex::encode_to_slice(self.0, &mut buf).expect("hex buffer size");
                f.write_str(std::str::from_utf8(&buf).expect("hex is ascii"))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
    };
}

define_id!(TraceId, 16, "trace id");
define_id!(SpanId, 8, "span id");

impl FromStr for TraceId {
    type Err = IdError;

    /// Accepts 32 hex digits or the X-Ray form `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`.
    fn from_str(text: &str) -> Result<Self, IdError> {
        match text.strip_prefix("1-") {
            Some(rest) if text.len() == 35 && rest.as_bytes().get(8) == Some(&b'-') => {
                let mut joined = String::with_capacity(32);
                joined.push_str(&rest[..8]);
                joined.push_str(&rest[9..]);
                Self::from_hex(&joined)
            }
            _ => Self::from_hex(text),
        }
    }
}

impl FromStr for SpanId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        Self::from_hex(text)
    }
}

impl TraceId {
    /// The X-Ray form of this id: `1-` + first 8 hex digits + `-` + the other 24.
    pub fn to_xray(&self) -> String {
        let hex = self.to_hex();
        format!("1-{}-{}", &hex[..8], &hex[8..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id: TraceId = "5759e988bd862e3fe1be46a994272793".parse().unwrap();
        assert_eq!(id.to_string(), "5759e988bd862e3fe1be46a994272793");
        let span: SpanId = "00f067aa0ba902b7".parse().unwrap();
        assert_eq!(span.to_string(), "00f067aa0ba902b7");
        assert_eq!(format!("{span:?}"), "SpanId(00f067aa0ba902b7)");
    }

    #[test]
    fn xray_form_maps_to_the_same_trace() {
        let xray: TraceId = "1-5759e988-bd862e3fe1be46a994272793".parse().unwrap();
        let otel: TraceId = "5759e988bd862e3fe1be46a994272793".parse().unwrap();
        assert_eq!(xray, otel);
        assert_eq!(otel.to_xray(), "1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn invalid_ids_are_rejected() {
        assert_eq!(TraceId::from_bytes(&[0; 16]), Err(IdError::AllZeros));
        assert_eq!(
            SpanId::from_bytes(&[1; 7]),
            Err(IdError::WrongLength {
                expected: 8,
                got: 7
            })
        );
        assert!("zz59e988bd862e3fe1be46a994272793"
            .parse::<TraceId>()
            .is_err());
        assert!("1-5759e988xbd862e3fe1be46a994272793"
            .parse::<TraceId>()
            .is_err());
        assert_eq!(
            "00000000000000000000000000000000".parse::<TraceId>(),
            Err(IdError::AllZeros)
        );
    }
}
