//! The HTTP form of `lookup`: the items an API on the step's allowed hosts answers for the
//! keys. Batch mode sends the keys of a batch in one request (`{keys}` in the URL, or a `POST`
//! of `{"keys": [...]}`), `batch_size` keys at most per request, and matches the items of the
//! answer (a JSON array) back to the keys by their field `match`. Per-key mode (`{key}` in the
//! URL) sends one `GET` per key, whose answer is the key's item, and a 404 means no item.
use autoflow_plugin_sdk::Error;
use autoflow_plugin_sdk::http::{Request, Response};
use autoflow_plugin_sdk::sql::Value as SqlValue;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Answer, key_text_of_json};

/// The HTTP method of the requests.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum Method {
    /// `GET`: the keys go in the URL (`{key}` or `{keys}`).
    #[default]
    #[serde(rename = "GET", alias = "get")]
    Get,
    /// `POST`: the keys go in the body, `{"<body_key>": [...]}`.
    #[serde(rename = "POST", alias = "post")]
    Post,
}

fn default_body_key() -> String {
    "keys".into()
}

fn default_batch_size() -> usize {
    100
}

fn default_separator() -> String {
    ",".into()
}

/// The `http` part of the config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The URL template: `{key}` (one request per key) or `{keys}` (one per batch); neither
    /// with `POST`.
    pub url: String,
    /// `GET` or `POST`.
    #[serde(default)]
    pub method: Method,
    /// With `POST`: the body's field that holds the array of keys.
    #[serde(default = "default_body_key")]
    pub body_key: String,
    /// Request headers (strings, or `{"secret": NAME, "prefix": ...}`).
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// JSON pointer to the items in an answer (batch: the array; per key: the item).
    #[serde(default)]
    pub items: Option<String>,
    /// The items' field matched against the keys (default: the `key` field's name).
    #[serde(default, rename = "match")]
    pub match_field: Option<String>,
    /// Keys per request at most, in batch mode.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// What joins the keys put in for `{keys}`.
    #[serde(default = "default_separator")]
    pub separator: String,
}

/// A piece of the URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// `{key}`.
    Key,
    /// `{keys}`.
    Keys,
}

/// How keys are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `GET` per key, `{key}` in the URL.
    PerKey,
    /// One `GET` per batch, `{keys}` in the URL.
    BatchUrl,
    /// One `POST` per batch, the keys in the body.
    BatchBody,
}

/// An API looked in.
#[derive(Debug)]
pub struct Api {
    config: HttpConfig,
    template: Vec<Part>,
    /// How keys are sent.
    pub mode: Mode,
    /// The field matched.
    match_field: String,
    /// The fields wanted (`None`: all).
    columns: Option<Vec<String>>,
    headers: Vec<(String, String)>,
}

fn bad(why: String) -> Error {
    Error::InvalidConfig(format!("http.{why}"))
}

/// Splits a URL template into text, `{key}` and `{keys}`.
fn parse_template(url: &str) -> Result<Vec<Part>, Error> {
    let mut parts = Vec::new();
    let mut rest = url;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(bad(format!("url {url:?}: a }} without {{")));
        }
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| bad(format!("url {url:?}: a {{ without }}")))?;
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        parts.push(match &rest[open + 1..close] {
            "key" => Part::Key,
            "keys" => Part::Keys,
            other => {
                return Err(bad(format!(
                    "url {url:?}: unknown placeholder {{{other}}} (use {{key}} or {{keys}})"
                )));
            }
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Ok(parts)
}

/// The mode a template and method make, or why they make none.
fn mode_of(template: &[Part], method: Method, url: &str) -> Result<Mode, Error> {
    let key = template.contains(&Part::Key);
    let keys = template.contains(&Part::Keys);
    match (key, keys, method) {
        (true, true, _) => Err(bad(format!(
            "url {url:?} has both {{key}} and {{keys}}: one request per key, or one per batch?"
        ))),
        (true, false, Method::Get) => Ok(Mode::PerKey),
        (false, true, Method::Get) => Ok(Mode::BatchUrl),
        (false, false, Method::Post) => Ok(Mode::BatchBody),
        (false, false, Method::Get) => Err(bad(format!(
            "url {url:?} has no {{key}} or {{keys}} (or use method POST to send the keys in the body)"
        ))),
        (_, _, Method::Post) => Err(bad(format!(
            "url {url:?}: with method POST the keys go in the body, not in {{key}} or {{keys}}"
        ))),
    }
}

impl Api {
    /// Checks `config` and reads its headers' secrets; `key` is the record's field looked up.
    pub fn open(
        config: HttpConfig,
        key: &str,
        columns: Option<Vec<String>>,
    ) -> Result<Self, Error> {
        let template = parse_template(&config.url)?;
        let mode = mode_of(&template, config.method, &config.url)?;
        let sample = render(&template, "x");
        if autoflow_plugin_sdk::http::parse_url(&sample).is_none() {
            return Err(bad(format!(
                "url {:?} is not an http:// or https:// URL",
                config.url
            )));
        }
        if let Some(p) = config
            .items
            .as_deref()
            .filter(|p| !p.is_empty() && !p.starts_with('/'))
        {
            return Err(bad(format!(
                "items {p:?} is not a JSON pointer (it starts with /)"
            )));
        }
        if config.batch_size == 0 {
            return Err(bad("batch_size must be at least 1".into()));
        }
        for (what, v) in [
            ("body_key", &config.body_key),
            ("separator", &config.separator),
        ] {
            if v.is_empty() {
                return Err(bad(format!("{what} must not be empty")));
            }
        }
        let match_field = config
            .match_field
            .clone()
            .unwrap_or_else(|| key.to_string());
        if match_field.is_empty() {
            return Err(bad("match must not be empty".into()));
        }
        let mut headers =
            autoflow_plugin_sdk::http::config_headers(&config.headers).map_err(|e| match e {
                Error::InvalidConfig(m) => bad(m),
                other => other,
            })?;
        add_default(&mut headers, "accept", "application/json");
        if mode == Mode::BatchBody {
            add_default(&mut headers, "content-type", "application/json");
        }
        Ok(Self {
            config,
            template,
            mode,
            match_field,
            columns,
            headers,
        })
    }

    /// The items of `keys`, each with its key, and the requests it took.
    pub fn fetch(&self, keys: &[(String, SqlValue)]) -> Result<Answer, Error> {
        let mut answer = Answer::default();
        if self.mode == Mode::PerKey {
            for (k, _) in keys {
                let url = render(&self.template, &http_util::percent_encode(k));
                answer.queries += 1;
                if let Some(item) = self.request(&url, None)? {
                    let item = self.one_item(&url, item)?;
                    answer.rows.extend(item.map(|i| (k.clone(), self.row(i))));
                }
            }
            return Ok(answer);
        }
        for chunk in keys.chunks(self.config.batch_size) {
            let (url, body) = self.batch_request(chunk)?;
            answer.queries += 1;
            let page = self
                .request(&url, body)?
                .ok_or_else(|| Error::Fatal(format!("{} {url}: status 404", self.method())))?;
            self.match_items(&url, page, &mut answer.rows)?;
        }
        Ok(answer)
    }

    /// Why a record whose key has no item is rejected.
    pub fn miss(&self, key: &str) -> String {
        format!(
            "no item with {} = {key} from {}",
            self.match_field, self.config.url
        )
    }

    fn method(&self) -> &'static str {
        match self.config.method {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }

    /// The URL and body of one batch request.
    fn batch_request(
        &self,
        chunk: &[(String, SqlValue)],
    ) -> Result<(String, Option<Vec<u8>>), Error> {
        if self.mode == Mode::BatchBody {
            let keys: Vec<Value> = chunk.iter().map(|(_, v)| Value::from(v)).collect();
            let mut body = Map::new();
            body.insert(self.config.body_key.clone(), Value::Array(keys));
            let body = serde_json::to_vec(&Value::Object(body))
                .map_err(|e| Error::Fatal(format!("encoding the keys: {e}")))?;
            return Ok((self.config.url.clone(), Some(body)));
        }
        let encoded: Vec<String> = chunk
            .iter()
            .map(|(k, _)| http_util::percent_encode(k))
            .collect();
        Ok((
            render(&self.template, &encoded.join(&self.config.separator)),
            None,
        ))
    }

    /// Sends one request; its answer's JSON, or `None` for a 404 (per key: no item).
    fn request(&self, url: &str, body: Option<Vec<u8>>) -> Result<Option<Value>, Error> {
        let method = self.method();
        let mut req = Request::new(method, url);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp: Response = http_util::send_any(req, method, url)?;
        if resp.status == 404 {
            return Ok(None);
        }
        if !resp.is_success() {
            return Err(http_util::status_error(method, url, &resp));
        }
        serde_json::from_slice(&resp.body).map(Some).map_err(|e| {
            Error::Fatal(format!(
                "{method} {url}: the body is not JSON: {e}{}",
                http_util::snippet(&resp.body)
            ))
        })
    }

    /// The value at `items` in an answer (the answer itself without it).
    fn at_items<'a>(&self, url: &str, body: &'a Value) -> Result<&'a Value, Error> {
        match self.config.items.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => body.pointer(p).ok_or_else(|| {
                Error::Fatal(format!("{} {url}: no {p} in the body", self.method()))
            }),
            None => Ok(body),
        }
    }

    /// A per-key answer's item: an object, or null for none.
    fn one_item(&self, url: &str, body: Value) -> Result<Option<Map<String, Value>>, Error> {
        match self.at_items(url, &body)? {
            Value::Object(o) => Ok(Some(o.clone())),
            Value::Null => Ok(None),
            other => Err(Error::Fatal(format!(
                "GET {url}: {} is {}, not an object",
                self.items_name(),
                autoflow_json_path::kind(other)
            ))),
        }
    }

    /// A batch answer's items, each with its key (the text of its `match` field).
    fn match_items(
        &self,
        url: &str,
        body: Value,
        rows: &mut Vec<(String, Map<String, Value>)>,
    ) -> Result<(), Error> {
        let method = self.method();
        let Value::Array(items) = self.at_items(url, &body)? else {
            return Err(Error::Fatal(format!(
                "{method} {url}: {} is not an array",
                self.items_name()
            )));
        };
        for (i, item) in items.iter().enumerate() {
            let Value::Object(o) = item else {
                return Err(Error::Fatal(format!(
                    "{method} {url}: item {i} is {}, not an object",
                    autoflow_json_path::kind(item)
                )));
            };
            let key = o.get(&self.match_field).and_then(key_text_of_json);
            let Some((k, _)) = key else {
                return Err(Error::Fatal(format!(
                    "{method} {url}: item {i} has no key in field {:?}",
                    self.match_field
                )));
            };
            rows.push((k, self.row(o.clone())));
        }
        Ok(())
    }

    /// An item as a row: without the matched field; with `columns`, those fields only (null
    /// when absent), in their order.
    fn row(&self, mut item: Map<String, Value>) -> Map<String, Value> {
        item.shift_remove(&self.match_field);
        match &self.columns {
            None => item,
            Some(cs) => cs
                .iter()
                .map(|c| (c.clone(), item.get(c).cloned().unwrap_or(Value::Null)))
                .collect(),
        }
    }

    fn items_name(&self) -> &str {
        self.config
            .items
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("the body")
    }
}

/// The template with `value` (already encoded) for its placeholder.
fn render(template: &[Part], value: &str) -> String {
    template
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.as_str(),
            Part::Key | Part::Keys => value,
        })
        .collect()
}

/// Adds header `name: value` unless the config gives that header.
fn add_default(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
        headers.push((name.into(), value.into()));
    }
}
