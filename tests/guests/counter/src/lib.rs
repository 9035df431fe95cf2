//! Counting transform: numbers the records it has seen across runs, keeping the count in its
//! durable step state (`state-get` / `state-set`); emits `{"n": count}` for each record.
use autoflow_plugin_sdk::*;

/// The count so far.
pub struct Counter(u64);

impl Transform for Counter {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "counter",
            "0.1.0",
            "Numbers records across runs with durable state (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        let seen = host::state_get("seen")
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.parse().ok());
        Ok(Counter(seen.unwrap_or(0)))
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        self.0 += 1;
        out.emit(Record {
            value: format!("{{\"n\":{}}}", self.0).into_bytes(),
            ..r
        });
        Ok(())
    }
    fn end_batch(&mut self, _: &mut Output) -> Result<()> {
        host::state_set("seen", self.0.to_string().as_bytes());
        Ok(())
    }
}
export_transform!(Counter);
