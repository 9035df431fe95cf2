//! Well-behaved transform: upper-cases each value, and per batch counts `seen` and logs a line.
use autoflow_plugin_sdk::*;

/// Upper-cases each record's value (ASCII only); counts the records of the current batch.
pub struct Upper {
    in_batch: u64,
}

impl Transform for Upper {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new("good-upper", "0.1.0", "Upper-cases each value (test guest)")
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Upper { in_batch: 0 })
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        self.in_batch += 1;
        out.emit(Record {
            value: r.value.to_ascii_uppercase(),
            ..r
        });
        Ok(())
    }
    fn end_batch(&mut self, _: &mut Output) -> Result<()> {
        let n = std::mem::take(&mut self.in_batch);
        host::count("seen", n);
        host::info(&format!("good-upper: upper-cased a batch of {n} records"));
        Ok(())
    }
}

export_transform!(Upper);
