//! `http-sink`: POSTs each batch of records to an HTTP endpoint (`wasi:http`, through the host's
//! egress checks).
//!
//! Config: `{ "url": "https://hooks.example.com/in", "headers": {"authorization": "..."},
//! "format": "json" | "ndjson", "max_attempts": 5, "initial_backoff_ms": 200,
//! "max_backoff_ms": 10000 }`. `json` sends a JSON array of the batch's values (each must be
//! JSON); `ndjson` sends the values one per line. A 2xx answer is success; a 429 or 5xx (or a
//! connection failure) is retried with exponential backoff (a `Retry-After` in seconds is
//! honoured, capped at `max_backoff_ms`) up to `max_attempts` attempts in all, then the write
//! fails `retryable`; another status, or a request the host refused, fails `fatal`.
use std::time::Duration;

use autoflow_plugin_sdk::http::{HttpError, Request};
use autoflow_plugin_sdk::{Error, Metadata, Record, Sink, host};
use serde::Deserialize;
use serde_json::Value;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "http-sink config",
  "type": "object",
  "properties": {
    "url": { "description": "Endpoint: an http:// or https:// URL whose host is in the step's allow_hosts.", "type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://" },
    "headers": { "description": "Request header fields: a string, or {\"secret\": NAME, \"prefix\": \"Bearer \"} for the value of a secret granted to the step.", "type": "object", "additionalProperties": { "oneOf": [ { "type": "string" }, { "type": "object", "properties": { "secret": { "type": "string", "minLength": 1 }, "prefix": { "type": "string" } }, "required": ["secret"], "additionalProperties": false } ] } },
    "format": { "description": "json: a JSON array of the batch's values (default). ndjson: one value per line.", "enum": ["json", "ndjson"], "default": "json" },
    "max_attempts": { "description": "Attempts per batch, the first included (default 5).", "type": "integer", "minimum": 1, "maximum": 100, "default": 5 },
    "initial_backoff_ms": { "description": "Wait before the first retry; doubles each time (default 200).", "type": "integer", "minimum": 0, "default": 200 },
    "max_backoff_ms": { "description": "Longest wait between attempts, Retry-After included (default 10000).", "type": "integer", "minimum": 0, "default": 10000 }
  },
  "required": ["url"],
  "additionalProperties": false
}"##;

/// How a batch is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A JSON array of the values.
    #[default]
    Json,
    /// One value per line.
    Ndjson,
}

/// The config as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Endpoint.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    /// Encoding.
    #[serde(default)]
    pub format: Format,
    /// Attempts per batch.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First backoff, ms.
    #[serde(default = "default_initial")]
    pub initial_backoff_ms: u64,
    /// Longest backoff, ms.
    #[serde(default = "default_max")]
    pub max_backoff_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_initial() -> u64 {
    200
}
fn default_max() -> u64 {
    10_000
}

/// The sink: its endpoint and headers.
#[derive(Debug)]
pub struct HttpSink {
    config: Config,
    headers: Vec<(String, String)>,
}

impl Sink for HttpSink {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "http-sink",
            env!("CARGO_PKG_VERSION"),
            "POSTs each batch of records (a JSON array, or JSON lines) to an HTTP endpoint; \
             retries 429 and 5xx with exponential backoff, honouring Retry-After.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        if autoflow_plugin_sdk::http::parse_url(&config.url).is_none() {
            return Err(Error::InvalidConfig(format!(
                "url {:?} is not an http:// or https:// URL",
                config.url
            )));
        }
        if config.max_attempts == 0 {
            return Err(Error::InvalidConfig(
                "max_attempts must be at least 1".into(),
            ));
        }
        let mut headers = autoflow_plugin_sdk::http::config_headers(&config.headers)?;
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            let ct = match config.format {
                Format::Json => "application/json",
                Format::Ndjson => "application/x-ndjson",
            };
            headers.push(("content-type".into(), ct.into()));
        }
        Ok(Self { config, headers })
    }

    fn write(&mut self, records: Vec<Record>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let body = encode(self.config.format, &records)?;
        let url = &self.config.url;
        let mut attempt = 1;
        loop {
            let mut req = Request::post(url).body(body.clone());
            for (k, v) in &self.headers {
                req = req.header(k, v);
            }
            let (why, retry_after) = match req.send() {
                Ok(resp) if resp.is_success() => return Ok(()),
                Ok(resp) if resp.status == 429 || resp.status >= 500 => {
                    let after = resp
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    (format!("status {}", resp.status), after)
                }
                Ok(resp) => {
                    let text = String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                        .trim()
                        .to_string();
                    return Err(Error::Fatal(format!(
                        "POST {url}: status {} {text}",
                        resp.status
                    )));
                }
                Err(e) if final_error(&e) => return Err(Error::Fatal(format!("POST {url}: {e}"))),
                Err(e) => (e.to_string(), None),
            };
            if attempt >= self.config.max_attempts {
                return Err(Error::Retryable(format!(
                    "POST {url}: {why} after {attempt} attempt{}",
                    if attempt == 1 { "" } else { "s" }
                )));
            }
            let wait = backoff(&self.config, attempt, retry_after);
            host::log(
                host::Level::Warn,
                &format!(
                    "POST {url}: {why} (attempt {attempt}); retrying in {} ms",
                    wait.as_millis()
                ),
            );
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

/// Errors that another attempt will not fix: refusals, caps, bad URLs.
fn final_error(e: &HttpError) -> bool {
    e.is_refused()
        || matches!(
            e.code.as_str(),
            "invalid-url"
                | "unsupported"
                | "http-request-body-size"
                | "http-request-uri-invalid"
                | "invalid-header"
                | "tls-certificate-error"
        )
}

/// The wait after failed attempt `attempt` (1-based): `initial * 2^(attempt-1)`, or the
/// server's `Retry-After` seconds, capped at `max_backoff_ms`.
pub fn backoff(c: &Config, attempt: u32, retry_after_secs: Option<u64>) -> Duration {
    let exp = c
        .initial_backoff_ms
        .saturating_mul(1u64 << (attempt - 1).min(30));
    let ms = retry_after_secs
        .map_or(exp, |s| s.saturating_mul(1000))
        .min(c.max_backoff_ms);
    Duration::from_millis(ms)
}

/// The request body of `records`.
pub fn encode(format: Format, records: &[Record]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    match format {
        Format::Json => {
            out.push(b'[');
            for (i, r) in records.iter().enumerate() {
                serde_json::from_slice::<serde::de::IgnoredAny>(&r.value).map_err(|e| {
                    Error::Fatal(format!("record {i} of the batch is not JSON: {e}"))
                })?;
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(r.value.trim_ascii());
            }
            out.push(b']');
        }
        Format::Ndjson => {
            for r in records {
                let v = r.value.trim_ascii_end();
                if v.contains(&b'\n') {
                    return Err(Error::Fatal(
                        "a record value spans lines; ndjson needs one line each".into(),
                    ));
                }
                out.extend_from_slice(v);
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}

autoflow_plugin_sdk::export_sink!(HttpSink);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> Config {
        autoflow_plugin_sdk::parse_config(r#"{"url":"http://h/in"}"#).unwrap()
    }

    #[test]
    fn encodes_batches() {
        let rs = vec![Record::new(r#"{"a":1}"#), Record::new("2\n")];
        assert_eq!(encode(Format::Json, &rs).unwrap(), br#"[{"a":1},2]"#);
        assert_eq!(encode(Format::Ndjson, &rs).unwrap(), b"{\"a\":1}\n2\n");
        assert!(encode(Format::Json, &[Record::new("nope")]).is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = config();
        assert_eq!(backoff(&c, 1, None), Duration::from_millis(200));
        assert_eq!(backoff(&c, 3, None), Duration::from_millis(800));
        assert_eq!(backoff(&c, 30, None), Duration::from_millis(10_000));
        assert_eq!(backoff(&c, 1, Some(2)), Duration::from_millis(2000));
        assert_eq!(backoff(&c, 1, Some(3600)), Duration::from_millis(10_000));
    }
}
