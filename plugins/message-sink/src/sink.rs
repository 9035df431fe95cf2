//! The message sink itself, whatever name it runs under: every record is one message to the
//! configured destination through a granted connection; a batch is one `publish` call, which
//! returns once the service stored every message. The host picks NATS JetStream (the
//! destination is a subject), a Redis stream (the destination is the stream's key,
//! `XADD key * payload <value>` plus one field per header) or AMQP (`EXCHANGE/ROUTING-KEY`, or
//! a queue's name) from the connection's URL. The
//! payload is the record's value, its key travels in header (field) `autoflow-key`, its headers
//! as headers ([`autoflow_plugin_sdk::messaging::outgoing_from_record`]).
//!
//! `message-sink` compiles this file as a module, and so do its old names `nats-sink` and
//! `redis-sink`, each with the config it always had, and `amqp-sink`.
use autoflow_plugin_sdk::{Error, Metadata, Record, Sink, host, messaging};
use serde::de::DeserializeOwned;
pub use std::borrow::Cow;

/// A config of the message sink: where it publishes, and what it says about itself.
pub trait Destination: DeserializeOwned + Sized + 'static {
    /// The plugin's name.
    const NAME: &'static str;
    /// What `describe` says it does.
    const DESCRIPTION: &'static str;
    /// JSON Schema (draft 2020-12) of the config.
    const SCHEMA: &'static str;

    /// The granted connection.
    fn connection(&self) -> &str;

    /// The subject, stream key or AMQP destination every record goes to.
    fn destination(&self) -> Cow<'_, str>;

    /// Why the config cannot be used (`invalid-config`), checked when the step opens.
    fn check(&self) -> Result<(), Error>;
}

/// The sink under config `C`.
#[derive(Debug)]
pub struct MessageSink<C> {
    config: C,
}

impl<C: Destination> Sink for MessageSink<C> {
    type Config = C;

    fn metadata() -> Metadata {
        Metadata::new(C::NAME, env!("CARGO_PKG_VERSION"), C::DESCRIPTION).config_schema(C::SCHEMA)
    }

    fn open(config: C) -> Result<Self, Error> {
        config.check()?;
        Ok(Self { config })
    }

    fn write(&mut self, records: Vec<Record>) -> Result<(), Error> {
        let n = messaging::publish_records(
            self.config.connection(),
            &self.config.destination(),
            records,
        )?;
        if n > 0 {
            host::count("messages_published", n as u64);
        }
        Ok(())
    }
}
