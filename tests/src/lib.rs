//! Shared harness for the end-to-end tests.

/// Absolute paths of the test guest components (`tests/guests`), built for wasm32-wasip2 by
/// `build.rs`: one constant per guest, such as [`guests::SPIN_LOOP`], and [`guests::ALL`].
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
