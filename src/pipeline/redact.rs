//! What the tool shows of a URL written in a pipeline file (in validation errors, logs and stored reasons): its secret-looking parts masked.

/// What stands in for a secret.
pub const MASK: &str = "***";

/// A URL as the tool shows it in logs, errors and stored reasons.
///
/// Kept: scheme, host, port, and the path segments that read as words (at
/// most 32 letters, `-`, `_` or `.`, with at most two capitals) or are at
/// most 3 characters long. Replaced by `***`: every other path segment (one
/// with digits, symbols or mixed case, as tokens are), every query value,
/// and query names that do not read as words. Dropped: user info and
/// fragment. `https://crm.example.com/hooks/T0k3nXyZ?key=abc` shows as
/// `https://crm.example.com/hooks/***?key=***`. A secret that is itself a
/// plain word is not recognised: secrets belong in `sink.auth`, not the URL.
///
/// Text that does not parse as a URL with a host shows as its scheme and
/// host, then `/***` if anything follows; text without `://` as `***`.
pub fn redact_url(text: &str) -> String {
    let parsed = url::Url::parse(text)
        .ok()
        .filter(|u| u.has_host() && !u.cannot_be_a_base());
    let Some(url) = parsed else {
        return redact_unparsed(text);
    };
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| {
            s.map(|seg| if looks_secret(seg) { MASK } else { seg })
                .collect()
        })
        .unwrap_or_default();
    shown.push('/');
    shown.push_str(&segments.join("/"));
    if url.query().is_some() {
        let pairs: Vec<String> = url
            .query_pairs()
            .map(|(name, value)| {
                let name = if looks_secret(&name) { MASK } else { &name };
                if value.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}={MASK}")
                }
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// `scheme://host` of text that is not a parseable URL, then `/***`.
fn redact_unparsed(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return MASK.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut shown = format!("{scheme}://{host}");
    if end < rest.len() {
        shown.push_str("/***");
    }
    shown
}

/// Whether a path segment or query name could be a token (see [`redact_url`]).
fn looks_secret(part: &str) -> bool {
    let chars = part.chars().count();
    if chars <= 3 {
        return false;
    }
    let wordy = chars <= 32
        && part
            .chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '.'))
        && part.chars().filter(char::is_ascii_uppercase).count() <= 2;
    !wordy
}

/// The parts of `url` that [`redact_url`] hides, as written and decoded:
/// a response body that echoes them gets them replaced too.
pub fn url_secrets(url: &url::Url) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |raw: &str| {
        out.push(raw.to_string());
        if let Ok(decoded) = percent_decode(raw) {
            out.push(decoded);
        }
    };
    add(url.username());
    if let Some(p) = url.password() {
        add(p);
    }
    if let Some(segments) = url.path_segments() {
        for seg in segments.filter(|s| looks_secret(s)) {
            add(seg);
        }
    }
    for (name, value) in url.query_pairs() {
        if looks_secret(&name) {
            add(&name);
        }
        add(&value);
    }
    out
}

/// `%XX` escapes decoded, as UTF-8.
fn percent_decode(raw: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn url_tokens_in_path_query_and_user_info_are_masked() {
        for (url, shown) in [
            (
                "https://crm.example.com/hooks/orders",
                "https://crm.example.com/hooks/orders",
            ),
            (
                "https://user:pa55word@crm.example.com:8443/api/v1/hooks/T0k3nXyZ9?key=abc&debug#frag",
                "https://crm.example.com:8443/api/v1/hooks/***?key=***&debug",
            ),
            (
                "http://127.0.0.1:9/hook/tok_SECRETPATH123/orders",
                "http://127.0.0.1:9/hook/***/orders",
            ),
            (
                "https://hooks.example.com/services/abcdefghijklmnopqrstuvwxyzabcdefghij",
                "https://hooks.example.com/services/***",
            ),
            (
                "https://hooks.example.com/in/AbCdEfGhIjKl",
                "https://hooks.example.com/in/***",
            ),
            (
                "https://crm.example.com/?sk_live_1234567890",
                "https://crm.example.com/?***",
            ),
            ("https://[::1]:8080/", "https://[::1]:8080/"),
            ("https://crm.example.com", "https://crm.example.com/"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn unparseable_urls_show_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://u:pw@crm.example.com:99999/x/S3CRET"),
            "https://crm.example.com:99999/***"
        );
        assert_eq!(redact_url("https://[bad/S3CRET"), "https://[bad/***");
        assert_eq!(redact_url("no-scheme-S3CRET"), "***");
    }

    #[test]
    fn secrets_of_the_url_are_those_it_masks() {
        let url =
            url::Url::parse("https://bob:pa55@crm.example.com/hook/tok%2BEN99?key=v%20al&x=1")
                .unwrap();
        let secrets = url_secrets(&url);
        for s in ["bob", "pa55", "tok%2BEN99", "tok+EN99", "v al", "1"] {
            assert!(secrets.iter().any(|x| x == s), "{s} in {secrets:?}");
        }
        assert!(!secrets.iter().any(|x| x == "hook"), "{secrets:?}");
    }
}
