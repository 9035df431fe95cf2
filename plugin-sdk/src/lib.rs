//! The Autoflow plugin SDK: write a source, transform or sink in Rust as one trait impl and one
//! export macro, and unit-test it natively with [`testing::TestHost`]. Databases and message
//! queues the pipeline grants the step are reached through [`sql`] and [`messaging`].
//!
//! ```
//! use autoflow_plugin_sdk::*;
//!
//! struct Upper;
//! impl Transform for Upper {
//!     type Config = serde_json::Value;
//!     fn metadata() -> Metadata { Metadata::new("upper", "0.1.0", "Upper-cases values") }
//!     fn open(_: Self::Config) -> Result<Self> { Ok(Upper) }
//!     fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
//!         out.emit(Record::new(r.value.to_ascii_uppercase()));
//!         Ok(())
//!     }
//! }
//! export_transform!(Upper);
//! ```
extern crate self as autoflow_plugin_sdk;

pub use serde;
pub use serde_json;
pub use wit_bindgen;

#[doc(hidden)]
pub mod bindings;
#[cfg(target_arch = "wasm32")]
mod convert;
mod error;
#[doc(hidden)]
pub mod heap;
pub mod host;
pub mod http;
#[cfg(target_arch = "wasm32")]
mod instance;
pub mod messaging;
mod metadata;
mod record;
pub mod sink;
pub mod source;
pub mod sql;
pub mod testing;
pub mod transform;

pub use error::{Error, Result, parse_config};
pub use host::Level;
pub use metadata::Metadata;
pub use record::Record;
pub use sink::Sink;
pub use source::{Batch, Source};
pub use transform::{Output, Processed, Transform};

/// Rust plugins allocate through [`heap::Heap`] on wasm (see there why), unless the `heap`
/// feature is off.
#[cfg(all(target_arch = "wasm32", feature = "heap"))]
#[global_allocator]
static HEAP: heap::Heap = heap::Heap::new();

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
}
