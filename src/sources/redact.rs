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

/// Every URL in a text, as [`shown_url`] shows it.
pub(crate) fn redact_text(text: &str) -> String {
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
