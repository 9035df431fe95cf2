//! Passwords: argon2id (RustCrypto `argon2`) with [`PARAMS`], stored as PHC strings (which
//! name their parameters, so a hash made with older ones still checks). A password is at least
//! [`MIN_LEN`] characters and at most [`MAX_BYTES`] bytes, and is never logged.
//!
//! The parameters are OWASP's first argon2id recommendation: 19 MiB of memory, 2 passes, one
//! lane. On this project's 2-core development machine a sign-in costs the server about 33 ms of
//! CPU, nearly all of it the hash (`api-bench people`: 29 to 31 sign-ins per server CPU-second
//! on SQLite and PostgreSQL), so a server does some 30 sign-ins a second per core, and a guesser
//! with a stolen hash pays as much per guess.
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Fewest characters in a password.
pub const MIN_LEN: usize = 12;
/// Most bytes in a password (hashing a huge one would cost the server).
pub const MAX_BYTES: usize = 1024;
/// Memory per hash, KiB.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const PASSES: u32 = 2;
/// Lanes.
pub const LANES: u32 = 1;

/// Errors of hashing.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("password: {0}")]
    Refused(String),
    /// The hasher failed (no randomness, bad parameters).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Refuses a password shorter than [`MIN_LEN`] characters or longer than [`MAX_BYTES`].
pub fn check_strength(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::Refused(format!(
            "at least {MIN_LEN} characters"
        )));
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::Refused(format!("at most {MAX_BYTES} bytes")));
    }
    Ok(())
}

/// The PHC string of `password` (checked with [`check_strength`]) under a new random salt.
/// CPU-bound for tens of milliseconds: call it off the async threads.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_strength(password)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `stored` (false for a malformed one). As slow as
/// [`hash`].
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(argon) = hasher() else { return false };
    argon.verify_password(password.as_bytes(), &parsed).is_ok()
}

/// A hash no password matches (a random one's), to check against when the user is unknown,
/// so that a wrong name takes as long as a wrong password.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 24];
        let _ = getrandom::fill(&mut secret);
        hash(&hex::encode(secret)).unwrap_or_default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_check_and_are_argon2id_with_the_parameters() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse battery!", &h));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(h, hash("correct horse battery").unwrap(), "salted");
        assert!(!verify("anything at all", decoy()));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(hash("short").is_err());
        assert!(hash(&"x".repeat(MAX_BYTES + 1)).is_err());
        assert!(check_strength("twelve chars").is_ok());
    }
}
