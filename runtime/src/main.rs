//! `autoflow`: the server, the worker and the command-line client in one binary.
mod engine;
mod executor;
mod pipeline;
mod registry;

fn main() {}
