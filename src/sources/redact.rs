//! Credentials and queries taken out of locations, URLs and store errors before they are shown.

/// A location or URL without the user name and password it may carry
/// (`https://user:secret@host/...` becomes `https://***@host/...`).
pub(crate) fn without_credentials(location: &str) -> String {
    let Some(i) = location.find("://") else {
        return location.to_string();
    };
    let (scheme, rest) = location.split_at(i + 3);
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}***@{}{path}", &authority[at + 1..]),
        None => location.to_string(),
    }
}

/// A requested URL as it may be shown: no credentials, no query (which may
/// hold a signature or token).
pub(crate) fn shown_url(url: &str) -> String {
    let url = without_credentials(url);
    match url.find(['?', '#']) {
        Some(q) => format!("{}?...", &url[..q]),
        None => url,
    }
}

/// A store's XML error body (`<Error>...</Error>`) cut to its `Code` and
/// `Message`. S3 answers a bad signature with the access key id, the string
/// it signed and the canonical request, whose signed headers hold the
/// session token; an expired token comes back in `<Token-0>`. object_store
/// puts the whole body in its error text. What a body holds beside the code
/// and message is not shown, whatever the store.
fn without_error_body(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<Error>") {
        let before = &rest[..start];
        // The `<?xml ...?>` declaration in front of the body.
        let before = match before.rfind("<?xml") {
            Some(x) if before[x..].contains("?>") => &before[..x],
            _ => before,
        };
        out.push_str(before);
        let body = &rest[start..];
        let (body, after) = match body.find("</Error>") {
            Some(end) => (&body[..end], &body[end + "</Error>".len()..]),
            None => (body, ""),
        };
        let element = |tag: &str| {
            let open = format!("<{tag}>");
            let from = body.find(&open)? + open.len();
            let len = body[from..].find(&format!("</{tag}>"))?;
            Some(body[from..from + len].trim().to_string())
        };
        out.push_str(&match (element("Code"), element("Message")) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code,
            (None, Some(message)) => message,
            (None, None) => "(error body not shown)".to_string(),
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The values of the standard credential variables that are set, longest
/// first (so a value that holds another is taken out whole).
fn secrets_in_environment() -> Vec<String> {
    let mut values: Vec<String> = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_KEY",
    ]
    .iter()
    .filter_map(|v| std::env::var(v).ok())
    // Too short to be a key; taking it out would garble the text.
    .filter(|v| v.len() >= 8)
    .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

/// Every URL in a text, as [`shown_url`] shows it; a store's XML error body
/// cut to its code and message; and the values of the standard credential
/// variables, wherever a server repeated them, as `***`.
pub(crate) fn redact_text(text: &str) -> String {
    let mut text = without_error_body(text);
    for secret in secrets_in_environment() {
        text = text.replace(&secret, "***");
    }
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            if word.contains("://") {
                let trimmed = word.trim_end();
                format!("{}{}", shown_url(trimmed), &word[trimmed.len()..])
            } else {
                word.to_string()
            }
        })
        .collect()
}

/// An error and its causes on one line, with URLs redacted.
pub(crate) fn redacted_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    redact_text(&text)
}

/// A server answered a store request with a redirect.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{url}: redirected ({status}) to {to}, which is not followed")]
pub struct Redirected {
    /// The requested URL, as shown by [`shown_url`].
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// The `Location` answered, as shown by [`shown_url`].
    pub to: String,
}

/// The redirect behind a store error, if that is what it is.
pub(crate) fn redirect_in(e: &object_store::Error) -> Option<&Redirected> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Redirected>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_error_body_keeps_its_code_and_message_only() {
        let text = "Error performing GET http://h/b?list-type=2 in 0s: Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><AWSAccessKeyId>AKIAEXAMPLE1234</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256</StringToSign><CanonicalRequest>GET /b\nx-amz-security-token:FQoGZXIvYXdzEXAMPLE\n</CanonicalRequest></Error>";
        let shown = redact_text(text);
        assert_eq!(
            shown,
            "Error performing GET http://h/b?... in 0s: Server returned non-2xx status code: 403 Forbidden: SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided."
        );
    }

    #[test]
    fn a_cut_off_body_or_one_without_code_shows_nothing_of_itself() {
        assert_eq!(
            without_error_body("403: <Error><Token-0>FQoG</Token-0>"),
            "403: (error body not shown)"
        );
        assert_eq!(
            without_error_body(
                "a <Error><Code>X</Code></Error> b <Error><Message>m</Message></Error>"
            ),
            "a X b m"
        );
        assert_eq!(without_error_body("no body here"), "no body here");
    }
}
