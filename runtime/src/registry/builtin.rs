//! The built-in plugins, compiled from `plugins/` by the build script and embedded in the binary.
include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// A built-in plugin's name, version and component bytes.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Name, such as `json-filter`.
    pub name: &'static str,
    /// Semantic version.
    pub version: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

/// Every built-in plugin.
pub fn all() -> impl Iterator<Item = Builtin> {
    BUILTINS.iter().map(|&(name, version, bytes)| Builtin {
        name,
        version,
        bytes,
    })
}
