//! `fingerprint` (Rust): tags each JSON object with `fp`, the FNV-1a 32-bit hash of its compact
//! JSON text, as the object's first field. Empty objects are dropped; anything else is refused.
//! The same transform exists in Python, JavaScript and C; their outputs are byte-identical.
use autoflow_plugin_sdk::{serde_json::Value, *};

struct Fingerprint;

impl Transform for Fingerprint {
    type Config = serde_json::Map<String, Value>;
    fn metadata() -> Metadata {
        Metadata::new("fingerprint", "0.1.0", "Adds `fp`, the FNV-1a hash of each JSON object, as its first field.")
            .config_schema(r#"{"type":"object","additionalProperties":false}"#)
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Fingerprint)
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        let Ok(Value::Object(object)) = r.json() else {
            out.reject("not a JSON object");
            return Ok(());
        };
        if object.is_empty() {
            return Ok(());
        }
        let text = serde_json::to_string(&object).map_err(|e| Error::Fatal(e.to_string()))?;
        let fp = text.bytes().fold(0x811c9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        out.emit(Record { value: format!("{{\"fp\":\"{fp:08x}\",{}", &text[1..]).into_bytes(), ..r });
        Ok(())
    }
}

export_transform!(Fingerprint);
