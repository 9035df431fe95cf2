//! Secret-using transform: reads the granted secret `canary`, logs it (the host must redact
//! it), and emits `{"len": n}` per record; with `fail: true` it fails with the value in the
//! error (the host must redact that too).
use autoflow_plugin_sdk::*;

/// The config.
#[derive(serde::Deserialize)]
pub struct Config {
    /// Fail every call, naming the secret.
    #[serde(default)]
    pub fail: bool,
}

/// Holds the secret.
pub struct SecretUser {
    secret: String,
    fail: bool,
}

impl Transform for SecretUser {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new("secret-user", "0.1.0", "Uses, logs and leaks a secret (test guest)")
    }
    fn open(config: Config) -> Result<Self> {
        let secret = host::secret("canary").ok_or_else(|| Error::InvalidConfig("the secret canary is not granted".into()))?;
        Ok(SecretUser { secret, fail: config.fail })
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        host::info(&format!("using the secret {}", self.secret));
        if self.fail {
            return Err(Error::Fatal(format!("the server refused the token {}", self.secret)));
        }
        out.emit(Record { value: format!("{{\"len\":{}}}", self.secret.len()).into_bytes(), ..r });
        Ok(())
    }
}
export_transform!(SecretUser);
