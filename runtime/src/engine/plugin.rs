//! A loaded plugin: a compiled component checked against the contract (`autoflow:plugin` 0.1.0
//! or 0.2.0), and ready to instantiate (`InstancePre`) as a source, transform or sink.
use std::fmt;

use wasmtime::component::{Component, Linker, types::ComponentItem};

use super::bindings::{
    sink::SinkPluginPre, source::SourcePluginPre, transform::TransformPluginPre,
    transform_v2::TransformPluginPre as TransformV2PluginPre,
};
use super::{Error, HostState, Result};

/// The newest WIT package version this host implements; components built against
/// [`CONTRACT_VERSIONS`]'s older ones load too.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Every `autoflow:plugin` version this host loads, oldest first.
pub const CONTRACT_VERSIONS: [&str; 2] = ["0.1.0", "0.2.0"];

/// The export of each world, by contract version: 0.2.0 changed only `transform`, so its
/// sources and sinks export 0.1.0's interfaces.
const EXPORTS: [(PluginKind, &str, &str); 4] = [
    (PluginKind::Source, "autoflow:plugin/source@0.1.0", "0.1.0"),
    (
        PluginKind::Transform,
        "autoflow:plugin/transform@0.1.0",
        "0.1.0",
    ),
    (
        PluginKind::Transform,
        "autoflow:plugin/transform@0.2.0",
        "0.2.0",
    ),
    (PluginKind::Sink, "autoflow:plugin/sink@0.1.0", "0.1.0"),
];

/// Which of the three plugin worlds a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Exports `source`: reads records from outside.
    Source,
    /// Exports `transform`: turns batches into batches.
    Transform,
    /// Exports `sink`: writes records out.
    Sink,
}

impl PluginKind {
    /// `source`, `transform` or `sink`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Source => "source",
            PluginKind::Transform => "transform",
            PluginKind::Sink => "sink",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pre-instantiated component, typed by world.
pub(crate) enum PluginPre {
    Source(SourcePluginPre<HostState>),
    Transform(TransformPluginPre<HostState>),
    TransformV2(TransformV2PluginPre<HostState>),
    Sink(SinkPluginPre<HostState>),
}

/// A compiled plugin, ready to instantiate cheaply many times.
pub struct Plugin {
    /// sha256 of the component bytes, hex.
    pub digest: String,
    /// Its world.
    pub kind: PluginKind,
    /// The `autoflow:plugin` version its export comes from (`0.1.0` for every source and sink,
    /// `0.1.0` or `0.2.0` for a transform).
    pub contract: &'static str,
    pub(crate) pre: PluginPre,
    /// Whether its native code was compiled now or read from the cache.
    pub origin: crate::registry::cache::Origin,
    /// How long loading took (compiling, or reading the cache).
    pub load_time: std::time::Duration,
    /// The names of the interfaces and functions the component imports, in its order.
    pub imports: Vec<String>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("digest", &self.digest)
            .field("kind", &self.kind)
            .field("contract", &self.contract)
            .finish()
    }
}

impl Plugin {
    /// Checks `component` against the contract and pre-instantiates it with `linker`.
    pub(crate) fn new(
        digest: &str,
        component: Component,
        linker: &Linker<HostState>,
        engine: &wasmtime::Engine,
    ) -> Result<Self> {
        let (kind, contract) = world_of(&component, engine)?;
        let imports = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            Error::Invalid(format!(
                "the component imports something the host does not provide: {e:#}"
            ))
        })?;
        let invalid = |e: wasmtime::Error| Error::Invalid(format!("{e:#}"));
        let pre = match (kind, contract) {
            (PluginKind::Source, _) => {
                PluginPre::Source(SourcePluginPre::new(instance_pre).map_err(invalid)?)
            }
            (PluginKind::Transform, "0.1.0") => {
                PluginPre::Transform(TransformPluginPre::new(instance_pre).map_err(invalid)?)
            }
            (PluginKind::Transform, _) => {
                PluginPre::TransformV2(TransformV2PluginPre::new(instance_pre).map_err(invalid)?)
            }
            (PluginKind::Sink, _) => {
                PluginPre::Sink(SinkPluginPre::new(instance_pre).map_err(invalid)?)
            }
        };
        Ok(Self {
            digest: digest.to_string(),
            kind,
            contract,
            pre,
            origin: crate::registry::cache::Origin::Compiled,
            load_time: std::time::Duration::ZERO,
            imports,
        })
    }
}

/// The one plugin world `component` exports, with its contract version, or why it is not a
/// plugin.
fn world_of(
    component: &Component,
    engine: &wasmtime::Engine,
) -> Result<(PluginKind, &'static str)> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    let kinds: Vec<(PluginKind, &'static str)> = EXPORTS
        .into_iter()
        .filter(|(_, name, _)| exports.iter().any(|e| e == name))
        .map(|(kind, _, version)| (kind, version))
        .collect();
    match kinds.as_slice() {
        [one] => Ok(*one),
        [] => {
            let other_version = exports.iter().find(|e| e.starts_with("autoflow:plugin/"));
            Err(Error::Invalid(match other_version {
                Some(e) => format!(
                    "the component exports {e}, but this host implements autoflow:plugin@{}",
                    CONTRACT_VERSIONS.join(" and @")
                ),
                None => format!(
                    "the component exports none of autoflow:plugin/source, transform or sink (@{}) (it exports: {})",
                    CONTRACT_VERSIONS.join(" or @"),
                    if exports.is_empty() {
                        "nothing".to_string()
                    } else {
                        exports.join(", ")
                    }
                ),
            }))
        }
        many => Err(Error::Invalid(format!(
            "the component exports {} plugin interfaces; a plugin exports exactly one",
            many.len()
        ))),
    }
}
