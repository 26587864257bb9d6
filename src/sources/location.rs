//! Where export files live: a local path or an object store URL, with an optional glob.

use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

use super::SourceError;

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
    /// Parse a resolved location (absolute path or URL).
    pub fn parse(
        location: &str,
        storage: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, SourceError> {
        let bad = |message: String| SourceError::Location {
            location: location.to_string(),
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
            });
        }
        let (scheme_and_host, path) = split_url(location).ok_or_else(|| bad("not a URL".into()))?;
        let (prefix, glob) = split_glob(path);
        let url = url::Url::parse(&format!("{scheme_and_host}/{prefix}"))
            .map_err(|e| bad(format!("invalid URL: {e}")))?;
        let (store, store_prefix) =
            object_store::parse_url_opts(&url, storage.iter().map(|(k, v)| (k, v.clone())))
                .map_err(|e| bad(e.to_string()))?;
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
        let url_base = format!("{scheme_and_host}/");
        Ok(Self {
            display: location.to_string(),
            store: Arc::from(store),
            local: false,
            prefix: store_prefix,
            glob,
            url_base,
        })
    }

    /// A human name for an object in this location.
    pub fn name_of(&self, path: &StorePath) -> String {
        format!("{}{}", self.url_base, path.as_ref())
    }
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
    fn local_paths_are_normalised() {
        assert_eq!(normalize_local("/a/./b/../c.csv"), "/a/c.csv");
    }

    #[test]
    fn s3_url_with_glob() {
        let mut opts = std::collections::BTreeMap::new();
        opts.insert("aws_region".to_string(), "eu-central-1".to_string());
        let loc = Location::parse("s3://bucket/exports/2026/orders_*.csv", &opts).unwrap();
        assert!(!loc.local);
        assert_eq!(loc.prefix.as_ref(), "exports/2026");
        let g = loc.glob.unwrap();
        assert!(g.is_match("exports/2026/orders_1.csv"));
        assert!(!g.is_match("exports/2026/sub/orders_1.csv"));
        assert_eq!(loc.url_base, "s3://bucket/");
    }
}
