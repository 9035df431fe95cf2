//! Misbehaving transform: emits 256 records of 1 MiB each per input record (output limits).
use autoflow_plugin_sdk::*;

const RECORDS_PER_INPUT: usize = 256;
const VALUE_BYTES: usize = 1 << 20;

/// Turns each input record into 256 MiB of output.
pub struct Bomb;

impl Transform for Bomb {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "output-bomb",
            "0.1.0",
            "Emits 256 MiB per input record (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Bomb)
    }
    fn process(&mut self, _: Record, out: &mut Output) -> Result<()> {
        for _ in 0..RECORDS_PER_INPUT {
            out.emit(Record::new(vec![b'x'; VALUE_BYTES]));
        }
        Ok(())
    }
}
export_transform!(Bomb);
