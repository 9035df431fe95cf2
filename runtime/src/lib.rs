//! Autoflow's runtime as a library: the engine, the executor, pipelines, the registry, the server
//! (store, REST API, auth) and the command line. The `autoflow` binary is a thin `main` over [`cli`].
pub mod alerts;
pub mod api;
pub mod auth;
pub mod cli;
pub mod control;
pub mod digest;
pub mod egress;
pub mod engine;
pub mod executor;
pub mod integrations;
pub mod lineage;
pub mod pipeline;
pub mod record;
pub mod registry;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod wire;
pub mod world;
