//! Plugin references: how a step names the plugin it runs.
//!
//! Three forms are accepted, tried in this order:
//! - `sha256:<64 lowercase hex digits>`: a component in the registry by digest;
//! - a path to a `.wasm` file: anything containing `/` or ending in `.wasm`
//!   (relative paths are read against the pipeline file's folder);
//! - `name@version` or `name@latest`: a registered plugin by name, where the name matches
//!   `[a-z0-9][a-z0-9-_]{0,62}` and the version is a semantic version `x.y.z`
//!   (optionally with `-pre.release` and `+build` parts, as in semver 2.0).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed plugin reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginRef {
    /// A registered plugin by name and version.
    Named {
        /// Plugin name.
        name: String,
        /// Exact version or `latest`.
        version: PluginVersion,
    },
    /// A component by content digest: the 64 lowercase hex digits of its sha256.
    Digest(String),
    /// A `.wasm` file on the host, as written (not yet resolved against a base folder).
    Path(PathBuf),
}

/// The version part of a [`PluginRef::Named`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginVersion {
    /// The newest version registered.
    Latest,
    /// One exact semantic version, e.g. `0.1.0`.
    Exact(String),
}

/// sha256 of `bytes`, lowercase hex: a component's digest, as `sha256:<hex>` names it.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The order of semantic versions, which `name@latest` takes the greatest of (semver 2.0
/// precedence): `major.minor.patch` numerically, then a release after its pre-releases, whose
/// dot-separated identifiers compare numerically when both are numbers, a number before a
/// word, and a shorter list first when one is the start of the other; `+build` is ignored.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let parts = |v: &str| {
        let v = v.split('+').next().unwrap_or(v);
        let (core, pre) = v
            .split_once('-')
            .map_or((v, None), |(c, p)| (c, Some(p.to_string())));
        let mut n = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        (
            (
                n.next().unwrap_or(0),
                n.next().unwrap_or(0),
                n.next().unwrap_or(0),
            ),
            pre,
        )
    };
    let ((core_a, pre_a), (core_b, pre_b)) = (parts(a), parts(b));
    core_a.cmp(&core_b).then_with(|| match (pre_a, pre_b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let (mut x, mut y) = (x.split('.'), y.split('.'));
            loop {
                match (x.next(), y.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(i), Some(j)) => {
                        let order = match (i.parse::<u64>(), j.parse::<u64>()) {
                            (Ok(m), Ok(n)) => m.cmp(&n),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => i.cmp(j),
                        };
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                }
            }
        }
    })
}

/// A text that is not a valid plugin reference (the text is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPluginRef(pub String);

impl fmt::Display for InvalidPluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin reference {:?} (expected name@version, name@latest, sha256:<hex> \
             or a path to a .wasm file)",
            self.0
        )
    }
}

impl std::error::Error for InvalidPluginRef {}

impl FromStr for PluginRef {
    type Err = InvalidPluginRef;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPluginRef(text.to_owned());
        if let Some(hex) = text.strip_prefix("sha256:") {
            return if is_sha256_hex(hex) {
                Ok(PluginRef::Digest(hex.to_owned()))
            } else {
                Err(invalid())
            };
        }
        if text.contains('/') || text.ends_with(".wasm") {
            return if text.trim().is_empty() || text.contains('\0') {
                Err(invalid())
            } else {
                Ok(PluginRef::Path(PathBuf::from(text)))
            };
        }
        let (name, version) = text.split_once('@').ok_or_else(invalid)?;
        if !is_valid_name(name) {
            return Err(invalid());
        }
        let version = if version == "latest" {
            PluginVersion::Latest
        } else if is_semver(version) {
            PluginVersion::Exact(version.to_owned())
        } else {
            return Err(invalid());
        };
        Ok(PluginRef::Named {
            name: name.to_owned(),
            version,
        })
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRef::Named { name, version } => write!(f, "{name}@{version}"),
            PluginRef::Digest(hex) => write!(f, "sha256:{hex}"),
            PluginRef::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Display for PluginVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginVersion::Latest => f.write_str("latest"),
            PluginVersion::Exact(v) => f.write_str(v),
        }
    }
}

/// Whether `name` matches `[a-z0-9][a-z0-9-_]{0,62}` (pipeline and plugin names).
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= 63 && is_valid_id(name)
}

/// Whether `id` matches `[a-z0-9][a-z0-9-_]*` (step ids).
pub fn is_valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `v` is a semantic version 2.0: `x.y.z[-pre][+build]`, no leading zeros in x, y, z.
fn is_semver(v: &str) -> bool {
    let (rest, build) = match v.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let core_ok = numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        });
    let ident_ok = |part: &str| {
        part.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    core_ok && pre.is_none_or(ident_ok) && build.is_none_or(ident_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PluginRef, InvalidPluginRef> {
        s.parse()
    }

    #[test]
    fn named_versions() {
        assert_eq!(
            parse("file-source@0.1.0"),
            Ok(PluginRef::Named {
                name: "file-source".into(),
                version: PluginVersion::Exact("0.1.0".into())
            })
        );
        assert_eq!(
            parse("json_filter@latest"),
            Ok(PluginRef::Named {
                name: "json_filter".into(),
                version: PluginVersion::Latest
            })
        );
        assert!(parse("x@1.2.3-beta.1+build.5").is_ok());
        for bad in [
            "x@@1",
            "x@1.2",
            "x@01.2.3",
            "x@1.2.3.4",
            "X@1.0.0",
            "@1.0.0",
            "x",
            "x@",
            "x@1.0.0-",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn digests_and_paths() {
        let hex = "ab".repeat(32);
        assert_eq!(
            parse(&format!("sha256:{hex}")),
            Ok(PluginRef::Digest(hex.clone()))
        );
        assert!(parse(&format!("sha256:{}", hex.to_uppercase())).is_err());
        assert!(parse("sha256:abc").is_err());
        assert_eq!(
            parse("./plugins/a.wasm"),
            Ok(PluginRef::Path("./plugins/a.wasm".into()))
        );
        assert_eq!(
            parse("filter.wasm"),
            Ok(PluginRef::Path("filter.wasm".into()))
        );
        assert_eq!(
            parse("/opt/p/filter"),
            Ok(PluginRef::Path("/opt/p/filter".into()))
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["a@1.0.0", "a@latest", "dir/x.wasm"] {
            assert_eq!(parse(text).map(|r| r.to_string()), Ok(text.to_owned()));
        }
    }

    #[test]
    fn error_text() {
        assert_eq!(
            parse("x@@1").map_err(|e| e.to_string()),
            Err(
                "invalid plugin reference \"x@@1\" (expected name@version, name@latest, \
                 sha256:<hex> or a path to a .wasm file)"
                    .to_owned()
            )
        );
    }
}
