use autoflow_plugin_sdk::*;

struct Upper;
impl Transform for Upper {
    type Config = serde_json::Value;
    fn metadata() -> Metadata { Metadata::new("upper", "0.1.0", "Upper-cases values") }
    fn open(_: Self::Config) -> Result<Self> { Ok(Upper) }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        out.emit(Record::new(r.value.to_ascii_uppercase()));
        Ok(())
    }
}
export_transform!(Upper);
