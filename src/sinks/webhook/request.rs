//! Building webhook requests: the body in either format, the stable `webhook-id`, and Standard Webhooks signatures.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{OutgoingOrder, SinkError};
use crate::pipeline::PayloadFormat;

/// Prefix of Standard Webhooks secrets.
const SECRET_PREFIX: &str = "whsec_";

/// Longest response-body excerpt kept in a dead letter or stop message, in characters.
pub(super) const SNIPPET_CHARS: usize = 512;

/// The `webhook-id` of a batch: its idempotency key, [`crate::sinks::batch_id`].
pub fn webhook_id(orders: &[OutgoingOrder]) -> String {
    crate::sinks::batch_id(orders)
}

/// The `webhook-signature` value for one attempt: `v1,` and the base64
/// HMAC-SHA256 of `id.timestamp.body`, keyed with the base64-decoded part of
/// the `whsec_...` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SinkError> {
    let key = SigningKey::decode(secret).map_err(|reason| SinkError::BadSecret { reason })?;
    Ok(key.sign(id, timestamp, body))
}

/// A decoded signing key; its `Debug` never shows the bytes.
#[derive(Clone)]
pub(super) struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Decodes `whsec_<base64>`; the prefix is optional, as in the reference implementation.
    pub(super) fn decode(secret: &str) -> Result<Self, &'static str> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| "the part after `whsec_` is not valid base64")?;
        if key.is_empty() {
            return Err("the key is empty");
        }
        Ok(Self(key))
    }

    /// `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
    pub(super) fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// The request body for `orders`. Records are JSON object texts already, so
/// they are written in as they are instead of being parsed and re-encoded.
pub fn build_body(format: PayloadFormat, orders: &[OutgoingOrder]) -> Vec<u8> {
    let records: usize = orders
        .iter()
        .map(|o| o.record.len() + o.key.len() + 64)
        .sum();
    let mut body = String::with_capacity(records + 128);
    match format {
        PayloadFormat::Envelope => {
            body.push_str(r#"{"type":"order.upserted","timestamp":"#);
            push_json_string(
                &mut body,
                &Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            );
            body.push_str(r#","data":{"orders":["#);
            for (i, o) in orders.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(r#"{"id":"#);
                push_json_string(&mut body, &o.key);
                body.push_str(r#","version":"#);
                body.push_str(&o.version.to_string());
                body.push_str(r#","order":"#);
                body.push_str(&o.record);
                body.push('}');
            }
            body.push_str("]}}");
        }
        PayloadFormat::S360 => {
            body.push('[');
            for (i, o) in orders.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(r#"{"orderDetailsData":"#);
                body.push_str(&o.record);
                body.push_str(r#","syncKey":"#);
                push_json_string(&mut body, &o.key);
                body.push_str(r#","syncVersion":"#);
                body.push_str(&o.version.to_string());
                body.push('}');
            }
            body.push(']');
        }
    }
    body.into_bytes()
}

/// Appends `s` as a JSON string literal (quoted and escaped).
fn push_json_string(out: &mut String, s: &str) {
    // Serialising a &str into JSON cannot fail; the fallback keeps the body valid anyway.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// A short, single-line excerpt of a response body for messages and dead letters.
pub(super) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == SNIPPET_CHARS {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.trim().to_string()
}

#[cfg(test)]
mod unit {
    use super::*;

    fn order(key: &str, version: i64) -> OutgoingOrder {
        OutgoingOrder {
            seq: 1,
            key: key.into(),
            version,
            record: "{}".into(),
        }
    }

    #[test]
    fn webhook_id_is_stable_and_depends_on_keys_and_versions() {
        let a = webhook_id(&[order("A1", 1), order("B2", 3)]);
        assert_eq!(a, webhook_id(&[order("A1", 1), order("B2", 3)]));
        assert!(a.starts_with("msg_") && a.len() == 36, "{a}");
        assert_ne!(a, webhook_id(&[order("A1", 2), order("B2", 3)]));
        assert_ne!(a, webhook_id(&[order("A1", 1)]));
        // Pinned so that a change of the scheme, which would break
        // de-duplication across an upgrade, is noticed.
        let expected = {
            let d = <Sha256 as sha2::Digest>::digest(b"A1:1\nB2:3\n");
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            format!("msg_{}", &hex[..32])
        };
        assert_eq!(a, expected);
    }

    #[test]
    fn sign_rejects_bad_secrets_without_echoing_them() {
        let err = sign("whsec_!!not-base64!!", "msg_1", 1, b"{}").unwrap_err();
        assert!(!err.to_string().contains("not-base64"), "{err}");
        assert!(sign("whsec_", "msg_1", 1, b"{}").is_err());
    }

    #[test]
    fn snippet_is_bounded_and_single_line() {
        let long = "x\n".repeat(10_000);
        let s = snippet(long.as_bytes());
        assert!(s.chars().count() <= SNIPPET_CHARS + 1);
        assert!(!s.contains('\n'));
    }
}
