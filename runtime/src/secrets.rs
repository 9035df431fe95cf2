//! Secrets at rest: each value sealed with XChaCha20-Poly1305 under the server's master key,
//! with its tenant and name as associated data (a sealed value moved to another tenant or name
//! does not open). The master key comes from `AUTOFLOW_MASTER_KEY` (base64 of 32 bytes) or from
//! a key file created, readable by its owner only, at the first start. The same key seals the
//! plugin data the database keeps ([`MasterKey::seal_bound`]), and [`Redactor`] keeps secret
//! values out of what leaves the sandbox.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// The environment variable that holds the master key, base64.
pub const MASTER_KEY_ENV: &str = "AUTOFLOW_MASTER_KEY";

/// The key secrets are sealed with.
#[derive(Clone)]
pub struct MasterKey(Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// The key from `env` (the value of [`MASTER_KEY_ENV`], if set), else from `file`, which
    /// is created with 32 random bytes (mode 0600) when it does not exist.
    pub fn load_or_create(env: Option<&str>, file: &Path) -> anyhow::Result<Self> {
        let text = match env {
            Some(text) => text.to_string(),
            None if file.exists() => std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
            None => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes)
                    .map_err(|e| anyhow::anyhow!("no randomness for a master key: {e}"))?;
                let text = STANDARD.encode(bytes);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut f = options
                    .open(file)
                    .with_context(|| format!("cannot create {}", file.display()))?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                text
            }
        };
        let bytes = STANDARD
            .decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the master key must be 32 bytes in base64 (from {MASTER_KEY_ENV} or {})",
                    file.display()
                )
            })?;
        Ok(Self(*Key::from_slice(&bytes)))
    }

    fn aad(tenant: &str, name: &str) -> Vec<u8> {
        format!("autoflow-secret\0{tenant}\0{name}").into_bytes()
    }

    fn encrypt(&self, aad: &[u8], value: &[u8]) -> anyhow::Result<([u8; 24], Vec<u8>)> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce)
            .map_err(|e| anyhow::anyhow!("no randomness for a nonce: {e}"))?;
        let sealed = XChaCha20Poly1305::new(&self.0)
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad })
            .map_err(|_| anyhow::anyhow!("the cipher refused to seal"))?;
        Ok((nonce, sealed))
    }

    fn decrypt(&self, aad: &[u8], nonce: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if nonce.len() != 24 {
            return None;
        }
        XChaCha20Poly1305::new(&self.0)
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            .ok()
    }

    /// Seals `value` of secret `name` of `tenant`: `(nonce, ciphertext)`.
    pub fn seal(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
    ) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let (nonce, sealed) = self
            .encrypt(&Self::aad(tenant, name), value)
            .with_context(|| format!("cannot seal secret {name:?}"))?;
        Ok((nonce.to_vec(), sealed))
    }

    /// Opens a sealed secret; an error when the key, tenant or name does not match.
    pub fn open(
        &self,
        tenant: &str,
        name: &str,
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, String> {
        self.decrypt(&Self::aad(tenant, name), nonce, sealed)
            .ok_or_else(|| format!("secret {name:?} does not open with this server's master key"))
    }

    /// Opens the sealed secrets `(name, nonce, ciphertext)` of `tenant` (as the store keeps
    /// them): their values by name.
    pub fn open_all(
        &self,
        tenant: &str,
        sealed: Vec<(String, Vec<u8>, Vec<u8>)>,
    ) -> Result<BTreeMap<String, String>, String> {
        sealed
            .into_iter()
            .map(|(name, nonce, ciphertext)| {
                let value = self.open(tenant, &name, &nonce, &ciphertext)?;
                Ok((name, String::from_utf8_lossy(&value).into_owned()))
            })
            .collect()
    }

    /// The associated data of plugin data of kind `what` owned by `owner` (tenant first):
    /// each part length-prefixed, so that no two owners give the same bytes.
    fn bound_aad(what: &str, owner: &[&str]) -> Vec<u8> {
        let mut aad = format!("autoflow-{what}").into_bytes();
        for part in owner {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    /// Seals plugin data `plain` of kind `what` (such as `checkpoint`) for `owner` (such as
    /// tenant, pipeline and step), as one value: [`SEALED_FORMAT`], the nonce, the ciphertext.
    pub fn seal_bound(&self, what: &str, owner: &[&str], plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (nonce, ciphertext) = self
            .encrypt(&Self::bound_aad(what, owner), plain)
            .with_context(|| format!("cannot seal a {what}"))?;
        let mut sealed = Vec::with_capacity(1 + nonce.len() + ciphertext.len());
        sealed.push(SEALED_FORMAT);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens what [`MasterKey::seal_bound`] sealed; `None` when it was sealed for another kind
    /// or owner, with another key, or was changed.
    pub fn open_bound(&self, what: &str, owner: &[&str], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&format, rest) = sealed.split_first()?;
        if format != SEALED_FORMAT || rest.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(24);
        self.decrypt(&Self::bound_aad(what, owner), nonce, ciphertext)
    }
}

/// The first byte of a value sealed by [`MasterKey::seal_bound`]: XChaCha20-Poly1305 under the
/// master key, a 24-byte nonce following.
pub const SEALED_FORMAT: u8 = 1;

/// Replaces every granted secret value in texts that leave the sandbox (log lines, errors,
/// reports) with `[secret]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor(Vec<String>);

impl Redactor {
    /// Redacts `values` (empty ones are ignored; longer ones are replaced first).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut v: Vec<String> = values.into_iter().filter(|s| !s.is_empty()).collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self(v)
    }

    /// `text` with every value replaced.
    pub fn apply(&self, text: &str) -> String {
        self.0.iter().fold(text.to_string(), |t, v| {
            if t.contains(v.as_str()) {
                t.replace(v.as_str(), REDACTED)
            } else {
                t
            }
        })
    }

    /// `bytes` (plugin data: step state, a record) with every value's bytes replaced.
    pub fn apply_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        self.0
            .iter()
            .fold(bytes.to_vec(), |b, v| replace_bytes(b, v.as_bytes()))
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a redacted value shows instead.
const REDACTED: &str = "[secret]";

/// `hay` with each `needle` (not empty) replaced by [`REDACTED`].
fn replace_bytes(hay: Vec<u8>, needle: &[u8]) -> Vec<u8> {
    let find = |h: &[u8]| h.windows(needle.len()).position(|w| w == needle);
    if find(&hay).is_none() {
        return hay;
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut rest = hay.as_slice();
    while let Some(i) = find(rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(REDACTED.as_bytes());
        rest = &rest[i + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_tenant_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load_or_create(None, &dir.path().join("master.key")).unwrap();
        let (nonce, sealed) = key.seal("t1", "db", b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key.open("t1", "db", &nonce, &sealed).unwrap(), b"hunter2");
        assert!(key.open("t2", "db", &nonce, &sealed).is_err());
        assert!(key.open("t1", "other", &nonce, &sealed).is_err());
        let again = MasterKey::load_or_create(None, &dir.path().join("master.key")).unwrap();
        assert_eq!(
            again.open("t1", "db", &nonce, &sealed).unwrap(),
            b"hunter2",
            "the key file is reused"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(MasterKey::load_or_create(Some("short"), &dir.path().join("x")).is_err());
    }

    #[test]
    fn redaction_hides_every_value() {
        let r = Redactor::new(["abc".to_string(), "abcdef".to_string(), String::new()]);
        assert_eq!(r.apply("x abcdef y abc"), "x [secret] y [secret]");
        assert_eq!(
            r.apply_bytes(b"\xffabcdef\x00abcabc"),
            b"\xff[secret]\x00[secret][secret]"
        );
        assert_eq!(r.apply_bytes(b"ab"), b"ab");
    }

    #[test]
    fn bound_data_opens_only_for_its_kind_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load_or_create(None, &dir.path().join("master.key")).unwrap();
        let sealed = key
            .seal_bound("checkpoint", &["t1", "p", "s"], b"state")
            .unwrap();
        assert_eq!(sealed[0], SEALED_FORMAT);
        assert!(!sealed.windows(5).any(|w| w == b"state"));
        assert_eq!(
            key.open_bound("checkpoint", &["t1", "p", "s"], &sealed)
                .unwrap(),
            b"state"
        );
        for owner in [
            ["t2", "p", "s"],
            ["t1", "q", "s"],
            ["t1", "p", "other"],
            ["t1", "ps", ""],
        ] {
            assert!(
                key.open_bound("checkpoint", &owner, &sealed).is_none(),
                "{owner:?}"
            );
        }
        assert!(
            key.open_bound("dead-letter", &["t1", "p", "s"], &sealed)
                .is_none()
        );
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(
            key.open_bound("checkpoint", &["t1", "p", "s"], &changed)
                .is_none()
        );
        assert!(
            key.open_bound("checkpoint", &["t1", "p", "s"], &sealed[..10])
                .is_none()
        );
        let other = MasterKey::load_or_create(None, &dir.path().join("other.key")).unwrap();
        assert!(
            other
                .open_bound("checkpoint", &["t1", "p", "s"], &sealed)
                .is_none()
        );
    }
}
