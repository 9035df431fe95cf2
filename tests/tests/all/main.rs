//! The end-to-end tests as one binary (wasmtime's `tests/all/main.rs` pattern): each file is a
//! module, so wasmtime, the host and the harness are linked once instead of once per file.
//! `cargo test -p autoflow-tests --test all scheduler::` runs one file's tests.
mod alert_rules;
mod alerts;
mod amqp;
mod backfills;
mod bad_pipelines;
mod codecs;
mod common;
mod disk_full;
mod egress;
mod event_triggers;
mod http_plugins;
mod integrations;
mod languages;
mod lineage;
mod lookup;
mod message_sink;
mod metrics;
mod mqtt;
mod outputs;
mod people;
mod pipelines;
mod plugins_native;
mod sandbox;
mod scaffold;
mod scheduler;
mod secrets;
mod server_api;
mod server_cli;
mod slow_clients;
mod sql_sink;
mod step_time;
mod traces;
mod transforms;
mod ui;
