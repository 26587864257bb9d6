//! What the sink shows of response bodies: every configured secret replaced (URLs are shown as [`crate::pipeline::redact`] shows them).

use crate::pipeline::redact::MASK;

/// Secret values shorter than this are not replaced in response bodies:
/// replacing every `1` or `acme` would garble the text and hide nothing.
const MIN_SECRET_CHARS: usize = 4;

/// Every configured secret value, in the forms a response body may echo it
/// (as is, JSON-escaped with and without `\/`, URL-encoded), longest first.
/// Its `Debug` shows only how many there are.
pub(super) struct Secrets(Vec<String>);

impl Secrets {
    /// Values shorter than 4 characters are left out.
    pub(super) fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut forms = Vec::new();
        for value in values {
            if value.chars().count() < MIN_SECRET_CHARS {
                continue;
            }
            if let Ok(quoted) = serde_json::to_string(&value) {
                let json = quoted[1..quoted.len() - 1].to_string();
                forms.push(json.replace('/', "\\/"));
                forms.push(json);
            }
            forms.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
            forms.push(value);
        }
        // Longest first, so that a secret containing another is replaced whole.
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        Self(forms)
    }

    /// `body` as text with every occurrence of every secret replaced by `***`.
    pub(super) fn scrub(&self, body: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(body).into_owned();
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} forms, redacted)", self.0.len())
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn every_form_of_every_secret_is_replaced() {
        let secrets = Secrets::new(
            ["tok/en+SECRET=", "abc", "tok/en+SECRET=-longer-variant", ""].map(String::from),
        );
        let body = br#"{"echo":"Bearer tok/en+SECRET=","php":"tok\/en+SECRET=","url":"tok%2Fen%2BSECRET%3D","long":"tok/en+SECRET=-longer-variant","short":"abc"}"#;
        let text = secrets.scrub(body);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains(r#""long":"***""#), "{text}");
        // Values under 4 characters are not replaced.
        assert!(text.contains(r#""short":"abc""#), "{text}");
        assert!(!format!("{secrets:?}").contains("SECRET"));
    }

    #[test]
    fn scrubbing_keeps_invalid_utf8_around_a_secret_from_hiding_it() {
        let secrets = Secrets::new(["S3CRET-VALUE".to_string()]);
        let mut body = vec![0xff, 0xfe];
        body.extend_from_slice(b"S3CRET-VALUE");
        body.push(0xc3);
        assert!(!secrets.scrub(&body).contains("S3CRET"));
    }
}
