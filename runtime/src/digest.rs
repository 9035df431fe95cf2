//! How a plugin's digest is spelled: `sha256:<hex>` wherever people and programs read it (API
//! answers, reports, the CLI, messages); bare lowercase hex inside (blob file names, database
//! columns). Input takes either spelling.

/// The algorithm's prefix of a spelled digest.
pub const PREFIX: &str = "sha256:";

/// `hex` as people read it: `sha256:<hex>` (a digest already spelled so is kept).
pub fn spelled(hex: &str) -> String {
    format!("{PREFIX}{}", bare(hex))
}

/// The hex of a digest written either way (`sha256:<hex>` or `<hex>`).
pub fn bare(text: &str) -> &str {
    text.strip_prefix(PREFIX).unwrap_or(text)
}

/// `#[serde(with = "crate::digest::as_spelled")]` on a hex `String` field: written as
/// `sha256:<hex>`, read in either spelling (so JSON stored before the prefix still reads).
pub mod as_spelled {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `sha256:<hex>`.
    pub fn serialize<S: Serializer>(hex: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::spelled(hex))
    }

    /// Reads either spelling into hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let text = String::deserialize(d)?;
        Ok(super::bare(&text).to_string())
    }
}

/// [`as_spelled`] for an `Option<String>` field.
pub mod opt_spelled {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `sha256:<hex>`, or null.
    pub fn serialize<S: Serializer>(hex: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match hex {
            Some(h) => s.serialize_str(&super::spelled(h)),
            None => s.serialize_none(),
        }
    }

    /// Reads either spelling into hex, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text.map(|t| super::bare(&t).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Row {
        #[serde(with = "as_spelled")]
        digest: String,
        #[serde(with = "opt_spelled", default)]
        plugin: Option<String>,
    }

    #[test]
    fn written_with_the_prefix_and_read_in_either_spelling() {
        let row = Row {
            digest: "ab12".into(),
            plugin: Some("cd34".into()),
        };
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"digest":"sha256:ab12","plugin":"sha256:cd34"}"#);
        assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), row);
        let old: Row = serde_json::from_str(r#"{"digest":"ab12","plugin":null}"#).unwrap();
        assert_eq!(old.digest, "ab12");
        assert_eq!(old.plugin, None);
        assert_eq!(spelled("sha256:ab12"), "sha256:ab12");
    }
}
