//! `http-source`: polls a JSON API over HTTP (`wasi:http`, through the host's egress checks)
//! and follows its pagination.
//!
//! Config: `{ "url": "https://api.example.com/orders", "items": "/data", "next": "/links/next",
//! "headers": {"accept": "application/json"}, "max_pages": 100 }`. Each page is GET; `items` is
//! a JSON pointer to the array of items in the page (default: the page itself must be an
//! array); each item becomes one record (value = the item's JSON). The next page's URL is read at
//! the JSON pointer `next` (a string, relative URLs allowed; null or absent = last page), else
//! from a `Link: <...>; rel="next"` header. At most `max_pages` pages per run; up to 5 redirects
//! per request, each checked again by the host.
//!
//! Cursor: `{"url": U, "skip": N}`: the page not yet fully read, and how many of its items
//! were delivered. A resumed run starts there; after the last page the cursor stays on it (with
//! the count read), so the next run picks up items appended to it, then follows new pages.
//!
//! Errors: a 429 or 5xx answer, or a connection failure, is `retryable`; another 4xx, a body
//! that is not the JSON expected, or a request the host refused (`http-request-denied`,
//! `destination-ip-prohibited`) is `fatal`.
use std::collections::VecDeque;

use autoflow_plugin_sdk::http::{Request, Response, resolve};
use autoflow_plugin_sdk::{Batch, Error, Metadata, Record, Source};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use http_util::MAX_REDIRECTS;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "http-source config",
  "type": "object",
  "properties": {
    "url": { "description": "First page: an http:// or https:// URL whose host is in the step's allow_hosts.", "type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://" },
    "items": { "description": "JSON pointer to the array of items in a page (e.g. /data). Default: the page is the array.", "type": "string", "pattern": "^(/.*)?$" },
    "next": { "description": "JSON pointer to the next page's URL in a page (a string; null or absent on the last page). Without it, a Link rel=\"next\" header is followed.", "type": "string", "pattern": "^(/.*)?$" },
    "headers": { "description": "Request header fields: a string, or {\"secret\": NAME, \"prefix\": \"Bearer \"} for the value of a secret granted to the step.", "type": "object", "additionalProperties": { "oneOf": [ { "type": "string" }, { "type": "object", "properties": { "secret": { "type": "string", "minLength": 1 }, "prefix": { "type": "string" } }, "required": ["secret"], "additionalProperties": false } ] } },
    "max_pages": { "description": "Pages read per run at most (default 100).", "type": "integer", "minimum": 1, "default": 100 }
  },
  "required": ["url"],
  "additionalProperties": false
}"##;

/// The config as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// First page.
    pub url: String,
    /// JSON pointer to the items of a page.
    #[serde(default)]
    pub items: Option<String>,
    /// JSON pointer to the next page's URL.
    #[serde(default)]
    pub next: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    /// Pages per run.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
}

fn default_max_pages() -> u32 {
    100
}

/// Where a run stands: the page not yet fully read and the items of it already delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The page's URL.
    pub url: String,
    /// Items of it already delivered.
    #[serde(default)]
    pub skip: u64,
}

/// The source: the page being read and what is left of it.
#[derive(Debug)]
pub struct HttpSource {
    config: Config,
    headers: Vec<(String, String)>,
    /// The page whose items are in `pending` (or the next one to fetch when `pending` is empty
    /// and `fetched` is false).
    page: Cursor,
    pending: VecDeque<Value>,
    fetched: bool,
    /// The page after `page`, once it was read.
    next: Option<String>,
    pages: u32,
}

impl Source for HttpSource {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "http-source",
            env!("CARGO_PKG_VERSION"),
            "Polls a JSON API over HTTP: each item of each page (a JSON pointer picks the array) \
             becomes a record; follows the next-page URL (JSON pointer or Link header); resumes \
             from the page not yet fully read.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config, cursor: Option<String>) -> Result<Self, Error> {
        if autoflow_plugin_sdk::http::parse_url(&config.url).is_none() {
            return Err(Error::InvalidConfig(format!(
                "url {:?} is not an http:// or https:// URL",
                config.url
            )));
        }
        for p in [&config.items, &config.next].into_iter().flatten() {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(Error::InvalidConfig(format!(
                    "{p:?} is not a JSON pointer (it starts with /)"
                )));
            }
        }
        let mut headers = autoflow_plugin_sdk::http::config_headers(&config.headers)?;
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            headers.push(("accept".into(), "application/json".into()));
        }
        let page = match cursor {
            None => Cursor {
                url: config.url.clone(),
                skip: 0,
            },
            Some(c) => serde_json::from_str::<Cursor>(&c)
                .map_err(|e| Error::Fatal(format!("invalid cursor {c:?}: {e}")))?,
        };
        Ok(Self {
            config,
            headers,
            page,
            pending: VecDeque::new(),
            fetched: false,
            next: None,
            pages: 0,
        })
    }

    fn next(&mut self, max: u32) -> Result<Option<Batch>, Error> {
        let mut records = Vec::new();
        while records.len() < max as usize {
            if let Some(item) = self.pending.pop_front() {
                records.push(Record::from_json(&item)?);
                self.page.skip += 1;
                continue;
            }
            // This page is done: on to the next one, if any and within max_pages.
            if self.fetched {
                match self.next.take() {
                    Some(url) if self.pages < self.config.max_pages => {
                        self.page = Cursor { url, skip: 0 };
                        self.fetched = false;
                    }
                    _ => break,
                }
            }
            // Records in hand go out before the next request: a failed fetch must not lose them.
            if !records.is_empty() || self.pages >= self.config.max_pages {
                break;
            }
            self.fetch()?;
        }
        if records.is_empty() {
            return Ok(None);
        }
        let cursor = serde_json::to_string(&self.page).map_err(|e| Error::Fatal(e.to_string()))?;
        Ok(Some(Batch {
            records,
            cursor: Some(cursor),
        }))
    }
}

impl HttpSource {
    /// GETs `self.page`, queues its items past `skip`, and notes the next page.
    fn fetch(&mut self) -> Result<(), Error> {
        let url = self.page.url.clone();
        let resp = get(&url, &self.headers)?;
        self.pages += 1;
        let body: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| Error::Fatal(format!("GET {url}: the body is not JSON: {e}")))?;
        let items = match self.config.items.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => body
                .pointer(p)
                .ok_or_else(|| Error::Fatal(format!("GET {url}: no {p} in the body")))?,
            None => &body,
        };
        let Value::Array(items) = items else {
            return Err(Error::Fatal(format!(
                "GET {url}: {} is not an array",
                self.config.items.as_deref().unwrap_or("the body")
            )));
        };
        let skip = usize::try_from(self.page.skip).unwrap_or(usize::MAX);
        self.pending = items.iter().skip(skip).cloned().collect();
        self.page.skip = self.page.skip.min(items.len() as u64);
        self.fetched = true;
        let next = match self.config.next.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => match body.pointer(p) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                None | Some(Value::Null) => None,
                Some(Value::String(_)) => None,
                Some(other) => {
                    return Err(Error::Fatal(format!(
                        "GET {url}: {p} is {other}, not a URL"
                    )));
                }
            },
            None => resp.header("link").and_then(link_next),
        };
        self.next = match next {
            Some(n) => {
                let abs = resolve(&resp.url, &n)
                    .ok_or_else(|| Error::Fatal(format!("GET {url}: bad next URL {n:?}")))?;
                // A page that points at itself ends the pagination rather than looping.
                (abs != url).then_some(abs)
            }
            None => None,
        };
        Ok(())
    }
}

/// GETs `url`, following redirects; maps failures to retryable or fatal errors.
fn get(url: &str, headers: &[(String, String)]) -> Result<Response, Error> {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    http_util::send(req, "GET", url)
}

/// The `rel="next"` target of a `Link` header value.
pub fn link_next(header: &str) -> Option<String> {
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|r| {
                    r.trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
                .unwrap_or(false)
        });
        if is_next {
            return Some(target.to_string());
        }
    }
    None
}

autoflow_plugin_sdk::export_source!(HttpSource);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn link_header_next() {
        let h = r#"<https://a/x?page=1>; rel="prev", <https://a/x?page=3>; rel="next""#;
        assert_eq!(link_next(h).unwrap(), "https://a/x?page=3");
        assert_eq!(link_next(r#"</p2>; rel=next"#).unwrap(), "/p2");
        assert!(link_next(r#"<https://a>; rel="last""#).is_none());
    }

    #[test]
    fn config_and_cursor() {
        let c: Config =
            autoflow_plugin_sdk::parse_config(r#"{"url":"http://h/x","items":"/data"}"#).unwrap();
        assert_eq!(c.max_pages, 100);
        let s = HttpSource::open(
            c.clone(),
            Some(r#"{"url":"http://h/x?p=2","skip":3}"#.into()),
        )
        .unwrap();
        assert_eq!(
            s.page,
            Cursor {
                url: "http://h/x?p=2".into(),
                skip: 3
            }
        );
        let bad = Config {
            url: "ftp://h".into(),
            ..c
        };
        assert!(matches!(
            HttpSource::open(bad, None),
            Err(Error::InvalidConfig(_))
        ));
    }
}
