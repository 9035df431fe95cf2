//! The HTTP client behind `autoflow plugin|pipeline|runs`: server URL and token from flags or
//! `AUTOFLOW_URL` / `AUTOFLOW_TOKEN` (else the `admin-token` file of the local data directory),
//! and for an `https://` server with a private CA, that CA (`--ca-cert`).
use std::path::PathBuf;

use anyhow::{Context, bail};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::wire::{ErrorBody, NEXT_AFTER_HEADER};

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
    /// Trust the server's certificate when this CA (PEM; one or more certificates) signed it,
    /// beside the public roots: for an `https://` server with a private CA.
    #[arg(long, env = "AUTOFLOW_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
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
        let mut http = reqwest::Client::builder();
        if let Some(path) = &args.ca_cert {
            for ca in read_ca(path)? {
                http = http.add_root_certificate(ca);
            }
        }
        let http = http.build().context("cannot build the HTTP client")?;
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
        let message = match resp.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => "(no message)".to_string(),
        };
        bail!("{status}: {message}")
    }

    /// Sends `req` and reads its JSON answer as a `T`.
    pub async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> anyhow::Result<T> {
        self.send(req)
            .await?
            .json()
            .await
            .context("the answer is not what this client expects")
    }

    /// `GET path` read as a `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    /// Sends `req` and reads one page of a listing: its rows and the cursor of the next page,
    /// when the server says there is one.
    pub async fn page<T: DeserializeOwned>(&self, req: RequestBuilder) -> anyhow::Result<Page<T>> {
        let resp = self.send(req).await?;
        let next = resp
            .headers()
            .get(NEXT_AFTER_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let rows = resp
            .json()
            .await
            .context("the answer is not what this client expects")?;
        Ok(Page { rows, next })
    }
}

/// The certificates of a `--ca-cert` file.
fn read_ca(path: &std::path::Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("--ca-cert {}: cannot read it", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("--ca-cert {}: not PEM certificates", path.display()))?;
    if certs.is_empty() {
        bail!(
            "--ca-cert {}: no certificate in the file (a PEM \"BEGIN CERTIFICATE\" block)",
            path.display()
        );
    }
    Ok(certs)
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Its rows.
    pub rows: Vec<T>,
    /// The cursor (`--after`) of the next page, if there are more.
    pub next: Option<String>,
}
