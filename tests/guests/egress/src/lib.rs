//! Egress test source: requests `url` once (GET, or POST of `post_bytes` bytes), following up
//! to `redirects` redirects, and returns `{"status": s, "len": body bytes}` as one record; a
//! failed request fails the step `fatal` with the error code in the message.
use autoflow_plugin_sdk::*;

/// The config.
#[derive(serde::Deserialize)]
pub struct Config {
    /// What to request.
    pub url: String,
    /// Redirects to follow (default 5).
    #[serde(default = "five")]
    pub redirects: u8,
    /// POST a body of this many bytes instead of a GET.
    #[serde(default)]
    pub post_bytes: Option<usize>,
}

fn five() -> u8 {
    5
}

/// The source: done after one record.
pub struct Egress {
    config: Config,
    done: bool,
}

impl Source for Egress {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new("egress", "0.1.0", "Makes one HTTP request (test guest)")
    }
    fn open(config: Config, _cursor: Option<String>) -> Result<Self> {
        Ok(Egress {
            config,
            done: false,
        })
    }
    fn next(&mut self, _max: u32) -> Result<Option<Batch>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        let req = match self.config.post_bytes {
            Some(n) => http::Request::post(&self.config.url).body(vec![b'x'; n]),
            None => http::Request::get(&self.config.url),
        };
        let resp = req
            .follow_redirects(self.config.redirects)
            .send()
            .map_err(|e| Error::Fatal(format!("request to {} failed: {e}", self.config.url)))?;
        let value = serde_json::json!({ "status": resp.status, "len": resp.body.len() });
        Ok(Some(Batch {
            records: vec![Record::from_json(&value)?],
            cursor: None,
        }))
    }
}
export_source!(Egress);
