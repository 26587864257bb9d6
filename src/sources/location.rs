//! Where export files live: a local path or an object store URL, with an optional glob.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use globset::{GlobBuilder, GlobMatcher};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreScheme};

use super::error::SourceError;
use super::redact::{Redirected, shown_url, without_credentials};

/// A resolved location: the store, the fixed prefix, and the glob over the rest.
#[derive(Debug, Clone)]
pub struct Location {
    /// What the user wrote, resolved against the pipeline folder (for messages).
    pub display: String,
    /// The store holding the files.
    pub store: Arc<dyn ObjectStore>,
    /// Local files are read directly from disk (streamed, seekable).
    pub local: bool,
    /// The part of the path before the first glob character.
    pub prefix: StorePath,
    /// Matches full object paths when the location has a glob.
    pub glob: Option<GlobMatcher>,
    /// URL prefix to show before object paths (`s3://bucket/`), empty for local.
    pub url_base: String,
    /// The store's ETag changes whenever an object's content does (S3, GCS,
    /// Azure): an unchanged listing then proves an unchanged file. Local
    /// files (an ETag of inode, mtime and size), SFTP (none) and HTTP
    /// servers (often mtime and size) prove it only by time; see
    /// `sync::detect::RACY_MS`.
    pub content_etag: bool,
}

/// Whether a path segment (or a whole location) holds glob characters.
pub(crate) fn has_glob(segment: &str) -> bool {
    segment.contains(['*', '?', '[', '{'])
}

/// Split `a/b/c*.csv` into (`a/b`, Some(`c*.csv`)).
fn split_glob(path: &str) -> (String, Option<String>) {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.iter().position(|s| has_glob(s)) {
        None => (path.to_string(), None),
        Some(i) => (segments[..i].join("/"), Some(path.to_string())),
    }
}

impl Location {
    /// Whether the store path `path` is one this location names (its glob
    /// matches it, or it is the one file named).
    pub fn covers(&self, path: &str) -> bool {
        match &self.glob {
            Some(glob) => glob.is_match(path),
            None => path == self.prefix.as_ref(),
        }
    }

    /// Parse a resolved location (absolute path or URL).
    pub fn parse(location: &str, storage: &BTreeMap<String, String>) -> Result<Self, SourceError> {
        let bad = |message: String| SourceError::Location {
            location: without_credentials(location),
            message,
        };
        let local_path = if let Some(rest) = location.strip_prefix("file://") {
            Some(rest.to_string())
        } else if location.contains("://") {
            None
        } else {
            let p = std::path::Path::new(location);
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|e| bad(e.to_string()))?
                    .join(p)
            };
            Some(abs.to_string_lossy().into_owned())
        };
        if let Some(path) = local_path {
            let path = normalize_local(&path);
            let (prefix, glob) = split_glob(&path);
            let glob = glob
                .map(|g| compile_glob(g.trim_start_matches('/')))
                .transpose()
                .map_err(bad)?;
            let prefix = StorePath::from(prefix.trim_start_matches('/'));
            return Ok(Self {
                display: location.to_string(),
                store: Arc::new(LocalFileSystem::new()),
                local: true,
                prefix,
                glob,
                url_base: "/".into(),
                content_etag: false,
            });
        }
        let (scheme_and_host, path) = split_url(location).ok_or_else(|| bad("not a URL".into()))?;
        let (prefix, glob) = split_glob(path);
        let url = url::Url::parse(&format!("{scheme_and_host}/{prefix}"))
            .map_err(|e| bad(format!("invalid URL: {e}")))?;
        let (store, store_prefix) = if url.scheme() == "sftp" {
            // object_store knows no SFTP (its scheme parser refuses the URL).
            let depth = glob.as_deref().and_then(|g| glob_depth(&prefix, g));
            let (store, path) = super::sftp::SftpStore::new(&url, storage, depth).map_err(bad)?;
            (Box::new(store) as Box<dyn ObjectStore>, path)
        } else {
            build_store(&url, storage).map_err(bad)?
        };
        let glob = match glob {
            None => None,
            Some(g) => {
                // The glob matches store paths, which start after the bucket.
                let rel = g
                    .strip_prefix(&prefix)
                    .unwrap_or(&g)
                    .trim_start_matches('/');
                let full = if store_prefix.as_ref().is_empty() {
                    rel.to_string()
                } else {
                    format!("{}/{rel}", store_prefix.as_ref())
                };
                Some(compile_glob(&full).map_err(bad)?)
            }
        };
        let url_base = format!("{}/", without_credentials(scheme_and_host));
        let content_etag = matches!(
            url.scheme(),
            "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "adl" | "azure"
        );
        Ok(Self {
            display: without_credentials(location),
            store: Arc::from(store),
            local: false,
            prefix: store_prefix,
            glob,
            url_base,
            content_etag,
        })
    }

    /// A human name for an object in this location.
    pub fn name_of(&self, path: &StorePath) -> String {
        format!("{}{}", self.url_base, path.as_ref())
    }
}

/// The object store for a URL, configured with the location's `storage`
/// options (an unknown option is an error, not ignored) and a client that
/// never follows a redirect.
fn build_store(
    url: &url::Url,
    storage: &BTreeMap<String, String>,
) -> Result<(Box<dyn ObjectStore>, StorePath), String> {
    let (scheme, path) = ObjectStoreScheme::parse(url).map_err(|e| e.to_string())?;
    let path = StorePath::parse(path).map_err(|e| e.to_string())?;
    fn options<K: FromStr, B>(
        storage: &BTreeMap<String, String>,
        store: &str,
        mut builder: B,
        set: impl Fn(B, K, String) -> B,
    ) -> Result<B, String> {
        for (key, value) in storage {
            let k = key
                .to_ascii_lowercase()
                .parse::<K>()
                .map_err(|_| format!("unknown storage option `{key}` for {store}"))?;
            builder = set(builder, k, value.clone());
        }
        Ok(builder)
    }
    fn built<S>(r: object_store::Result<S>) -> Result<S, String> {
        r.map_err(|e| e.to_string())
    }
    // Credentials and settings come from the standard variables of each
    // cloud (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    // `AWS_PROFILE` with the shared credentials and config files,
    // `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_KEY`, ...) or the
    // instance's role, as the clouds' own tools read them; `storage:`
    // options in the pipeline override them.
    let store: Box<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            // `aws_profile` is ours: object_store reads no profiles.
            let mut storage = storage.clone();
            let profile = storage.remove("aws_profile");
            let b = object_store::aws::AmazonS3Builder::from_env().with_url(url.to_string());
            let b = super::aws_profile::apply(b, profile.as_deref())?;
            let b = options(&storage, "S3", b, |b, k, v| b.with_config(k, v))?;
            Box::new(built(b.with_http_connector(NoRedirects).build())?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let b =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.to_string());
            let b = options(storage, "Google Cloud Storage", b, |b, k, v| {
                b.with_config(k, v)
            })?;
            Box::new(built(b.with_http_connector(NoRedirects).build())?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let b =
                object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.to_string());
            let b = options(storage, "Azure", b, |b, k, v| b.with_config(k, v))?;
            Box::new(built(b.with_http_connector(NoRedirects).build())?)
        }
        ObjectStoreScheme::Http => {
            let base = &url[..url::Position::BeforePath];
            let b = object_store::http::HttpBuilder::new().with_url(base);
            let b = options(storage, "HTTP", b, |b, k: ClientConfigKey, v| {
                b.with_config(k, v)
            })?;
            Box::new(built(b.with_http_connector(NoRedirects).build())?)
        }
        ObjectStoreScheme::Memory => Box::new(object_store::memory::InMemory::new()),
        other => return Err(format!("{other:?} locations are not supported")),
    };
    Ok((store, path))
}

/// Builds the HTTP client of every object store: the one object_store
/// builds from the same options, except that redirects are refused (an
/// export answered from elsewhere than configured is not read) and no proxy
/// is taken from the environment (`HTTP_PROXY` would otherwise route
/// requests, credentials included, through a host nobody configured; set the
/// `proxy_url` storage option to use one).
#[derive(Debug, Clone, Copy)]
struct NoRedirects;

impl HttpConnector for NoRedirects {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = client_for(options).map_err(|source| object_store::Error::Generic {
            store: "HTTP client",
            source: source.into(),
        })?;
        Ok(HttpClient::new(RefuseRedirects(client)))
    }
}

fn client_for(options: &ClientOptions) -> Result<reqwest::Client, String> {
    let get = |k: ClientConfigKey| options.get_config_value(&k);
    let flag = |k: ClientConfigKey| -> Result<bool, String> {
        match get(k).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("0" | "false" | "off" | "no" | "n") => Ok(false),
            Some("1" | "true" | "on" | "yes" | "y") => Ok(true),
            Some(v) => Err(format!("{k:?}: {v:?} is not a boolean")),
        }
    };
    let duration = |k: ClientConfigKey| -> Result<Option<Duration>, String> {
        get(k)
            .map(|v| humantime::parse_duration(&v).map_err(|e| format!("{k:?}: {v:?}: {e}")))
            .transpose()
    };
    let number = |k: ClientConfigKey| -> Result<Option<usize>, String> {
        get(k)
            .map(|v| v.parse().map_err(|e| format!("{k:?}: {v:?}: {e}")))
            .transpose()
    };
    let user_agent = get(ClientConfigKey::UserAgent)
        .unwrap_or_else(|| concat!("s360-sync/", env!("CARGO_PKG_VERSION")).to_string());
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        // As object_store: compression would make Content-Length lie about
        // the object's size.
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .no_deflate()
        .https_only(!flag(ClientConfigKey::AllowHttp)?);
    b = match get(ClientConfigKey::ProxyUrl) {
        None => b.no_proxy(),
        Some(url) => {
            let mut proxy = reqwest::Proxy::all(&url).map_err(|e| format!("proxy_url: {e}"))?;
            if let Some(excludes) = get(ClientConfigKey::ProxyExcludes) {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(&excludes));
            }
            if let Some(pem) = get(ClientConfigKey::ProxyCaCertificate) {
                let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| format!("proxy_ca_certificate: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.proxy(proxy)
        }
    };
    if let Some(t) = duration(ClientConfigKey::Timeout)? {
        b = b.timeout(t);
    }
    if let Some(t) = duration(ClientConfigKey::ConnectTimeout)? {
        b = b.connect_timeout(t);
    }
    if let Some(t) = duration(ClientConfigKey::PoolIdleTimeout)? {
        b = b.pool_idle_timeout(t);
    }
    if let Some(n) = number(ClientConfigKey::PoolMaxIdlePerHost)? {
        b = b.pool_max_idle_per_host(n);
    }
    if let Some(t) = duration(ClientConfigKey::Http2KeepAliveInterval)? {
        b = b.http2_keep_alive_interval(t);
    }
    if let Some(t) = duration(ClientConfigKey::Http2KeepAliveTimeout)? {
        b = b.http2_keep_alive_timeout(t);
    }
    if flag(ClientConfigKey::Http2KeepAliveWhileIdle)? {
        b = b.http2_keep_alive_while_idle(true);
    }
    if let Some(n) = number(ClientConfigKey::Http2MaxFrameSize)? {
        b = b.http2_max_frame_size(Some(n as u32));
    }
    if flag(ClientConfigKey::Http1Only)? {
        b = b.http1_only();
    }
    if flag(ClientConfigKey::Http2Only)? {
        b = b.http2_prior_knowledge();
    }
    if flag(ClientConfigKey::AllowInvalidCertificates)? {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| e.to_string())
}

/// Sends through reqwest and turns a redirect answer into an error that
/// object_store does not retry.
#[derive(Debug)]
struct RefuseRedirects(reqwest::Client);

type Answer<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

impl HttpService for RefuseRedirects {
    fn call<'s, 'a>(&'s self, req: HttpRequest) -> Answer<'a>
    where
        's: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            let url = shown_url(&req.uri().to_string());
            let res = HttpService::call(&self.0, req).await?;
            let status = res.status();
            // 304 answers a conditional request; it is not a redirect.
            if status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED {
                let to = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(shown_url)
                    .unwrap_or_else(|| "(no Location header)".into());
                return Err(HttpError::new(
                    HttpErrorKind::Unknown,
                    Redirected {
                        url,
                        status: status.as_u16(),
                        to,
                    },
                ));
            }
            Ok(res)
        })
    }
}

/// How many folder levels below `prefix` the files a glob matches are
/// (`a/*.csv` under `a`: 1), `None` when it has `**` (any depth).
fn glob_depth(prefix: &str, glob: &str) -> Option<usize> {
    if glob.contains("**") {
        return None;
    }
    let rel = glob
        .strip_prefix(prefix)
        .unwrap_or(glob)
        .trim_start_matches('/');
    Some(rel.split('/').count())
}

/// Collapse `.` and `..` segments so globs and prefixes line up with listed paths.
fn normalize_local(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn split_url(url: &str) -> Option<(&str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    match rest.find('/') {
        Some(i) => Some((&url[..scheme_end + i], &rest[i + 1..])),
        None => Some((url, "")),
    }
}

fn compile_glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid glob: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::redact::redact_text;

    #[test]
    fn splits_glob_at_first_wild_segment() {
        assert_eq!(
            split_glob("/data/exports/orders_*.csv"),
            (
                "/data/exports".to_string(),
                Some("/data/exports/orders_*.csv".to_string())
            )
        );
        assert_eq!(split_glob("/data/a.csv"), ("/data/a.csv".to_string(), None));
    }

    #[test]
    fn an_sftp_glob_says_how_deep_to_list() {
        assert_eq!(glob_depth("data/out", "data/out/orders_*.csv"), Some(1));
        assert_eq!(glob_depth("data", "data/*/orders.csv"), Some(2));
        assert_eq!(glob_depth("data", "data/**/orders.csv"), None);
    }

    #[test]
    fn local_paths_are_normalised() {
        assert_eq!(normalize_local("/a/./b/../c.csv"), "/a/c.csv");
    }

    #[test]
    fn s3_url_with_glob() {
        let mut opts = BTreeMap::new();
        opts.insert("aws_region".to_string(), "eu-central-1".to_string());
        let loc = Location::parse("s3://bucket/exports/2026/orders_*.csv", &opts).unwrap();
        assert!(!loc.local);
        assert_eq!(loc.prefix.as_ref(), "exports/2026");
        let g = loc.glob.unwrap();
        assert!(g.is_match("exports/2026/orders_1.csv"));
        assert!(!g.is_match("exports/2026/sub/orders_1.csv"));
        assert_eq!(loc.url_base, "s3://bucket/");
    }

    #[test]
    fn unknown_storage_options_are_refused() {
        let opts = BTreeMap::from([("alow_http".to_string(), "true".to_string())]);
        let e = Location::parse("https://example.com/a.csv", &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown storage option `alow_http`"), "{e}");
    }

    #[test]
    fn credentials_and_queries_are_not_shown() {
        assert_eq!(
            without_credentials("https://user:hunter2@host.example/a/b.csv"),
            "https://***@host.example/a/b.csv"
        );
        assert_eq!(
            without_credentials("/data/x@y/orders_?.csv"),
            "/data/x@y/orders_?.csv"
        );
        assert_eq!(
            shown_url("https://u:p@h.example/a.csv?sig=abc#f"),
            "https://***@h.example/a.csv?..."
        );
        assert_eq!(
            redact_text("Error performing HEAD http://u:p@h:9/x.csv?t=1 in 2s - refused"),
            "Error performing HEAD http://***@h:9/x.csv?... in 2s - refused"
        );
        let loc = Location::parse(
            "https://user:hunter2@host.example/orders.csv",
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(!loc.display.contains("hunter2"), "{}", loc.display);
        assert!(!loc.url_base.contains("hunter2"), "{}", loc.url_base);
    }
}
