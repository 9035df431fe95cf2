//! The HTTP client behind `autoflow plugin|pipeline|runs`: server URL and token from flags or
//! `AUTOFLOW_URL` / `AUTOFLOW_TOKEN` (else the `admin-token` file of the local data directory).
use std::path::PathBuf;

use anyhow::{Context, bail};
use reqwest::{Method, RequestBuilder, Response};

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(
        long,
        env = "AUTOFLOW_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API token. Default: `<data-dir>/admin-token` if readable.
    #[arg(long, env = "AUTOFLOW_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory whose `admin-token` is used when no token is given.
    #[arg(
        long,
        env = "AUTOFLOW_DATA_DIR",
        default_value = "./autoflow-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client as `args` say.
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let token = args.token.clone().or_else(|| {
            std::fs::read_to_string(args.data_dir.join("admin-token"))
                .ok()
                .map(|t| t.trim().to_string())
        });
        let http = reqwest::Client::builder()
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            base: args.url.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// A request to `path` (such as `/v1/plugins`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends `req`; a non-2xx answer becomes an error with the server's message.
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let message = body
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("(no message)");
        bail!("{status}: {message}")
    }

    /// Sends `req` and reads a JSON answer.
    pub async fn json(&self, req: RequestBuilder) -> anyhow::Result<serde_json::Value> {
        self.send(req)
            .await?
            .json()
            .await
            .context("the answer is not JSON")
    }
}
