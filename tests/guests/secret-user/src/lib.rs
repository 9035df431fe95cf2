//! Secret-using transform: reads the granted secret `canary`, logs it (the host must redact
//! it), and emits `{"len": n}` per record; with `fail: true` it fails with the value in the
//! error (the host must redact that too). With `keep: true` it keeps the value in its step
//! state and emits `{"token": value, "kept": bool}` (header `token` too), `kept` saying whether
//! the state it got back held the value intact; with `refuse: true` it rejects every record,
//! naming the value and saying whether the record's `token` is it (the host must seal and
//! redact its state and dead letters, and hand them back intact).
use autoflow_plugin_sdk::*;

/// The config.
#[derive(serde::Deserialize)]
pub struct Config {
    /// Fail every call, naming the secret.
    #[serde(default)]
    pub fail: bool,
    /// Keep the secret in the step state and pass it on.
    #[serde(default)]
    pub keep: bool,
    /// Reject every record, naming the secret.
    #[serde(default)]
    pub refuse: bool,
}

/// Holds the secret.
pub struct SecretUser {
    secret: String,
    config: Config,
    /// Whether the state held the secret when the step opened.
    kept: bool,
}

impl Transform for SecretUser {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new(
            "secret-user",
            "0.1.0",
            "Uses, logs, keeps and leaks a secret (test guest)",
        )
    }
    fn open(config: Config) -> Result<Self> {
        let secret = host::secret("canary")
            .ok_or_else(|| Error::InvalidConfig("the secret canary is not granted".into()))?;
        let kept = host::state_get("token").is_some_and(|b| b == secret.as_bytes());
        Ok(SecretUser {
            secret,
            config,
            kept,
        })
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        if self.config.refuse {
            let token = serde_json::from_slice::<serde_json::Value>(&r.value)
                .ok()
                .and_then(|v| v["token"].as_str().map(str::to_string));
            let whose = if token.as_deref() == Some(self.secret.as_str()) {
                "the secret"
            } else {
                "something else"
            };
            out.reject(format!(
                "refused the token {}: the record holds {whose}",
                self.secret
            ));
            return Ok(());
        }
        if self.config.keep {
            let value = serde_json::json!({ "token": self.secret, "kept": self.kept })
                .to_string()
                .into_bytes();
            out.emit(Record {
                value,
                headers: vec![("token".into(), self.secret.clone())],
                ..r
            });
            return Ok(());
        }
        host::info(&format!("using the secret {}", self.secret));
        if self.config.fail {
            return Err(Error::Fatal(format!(
                "the server refused the token {}",
                self.secret
            )));
        }
        out.emit(Record {
            value: format!("{{\"len\":{}}}", self.secret.len()).into_bytes(),
            ..r
        });
        Ok(())
    }
    fn end_batch(&mut self, _: &mut Output) -> Result<()> {
        if self.config.keep {
            host::state_set("token", self.secret.as_bytes());
        }
        Ok(())
    }
}
export_transform!(SecretUser);
