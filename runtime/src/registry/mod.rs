//! Where plugin bytes come from: the built-ins embedded in the binary, files, and blobs by
//! digest; and the compiled-artifact cache.
pub mod blob;
pub mod builtin;
pub mod cache;
pub mod resolve;

pub use resolve::{LocalPlugins, Resolved};
