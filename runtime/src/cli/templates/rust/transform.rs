//! `{{name}}`: an Autoflow transform. It marks each JSON object with `"seen": true`.
use autoflow_plugin_sdk::serde_json::{Map, Value};
use autoflow_plugin_sdk::*;

/// The transform; it keeps no state between records.
pub struct Plugin;

impl Transform for Plugin {
    type Config = Map<String, Value>;
    fn metadata() -> Metadata {
        Metadata::new("{{name}}", "0.1.0", "Marks each JSON object with \"seen\": true.")
            .config_schema(r#"{"type":"object","additionalProperties":false}"#)
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Plugin)
    }
    fn process(&mut self, mut r: Record, out: &mut Output) -> Result<()> {
        let Ok(Value::Object(mut object)) = r.json() else {
            out.reject("not a JSON object");
            return Ok(());
        };
        object.insert("seen".into(), Value::Bool(true));
        r.set_json(&object)?;
        out.emit(r);
        Ok(())
    }
}

export_transform!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use autoflow_plugin_sdk::testing::TestHost;

    #[test]
    fn marks_objects_and_refuses_the_rest() {
        let out = TestHost::new()
            .transform::<Plugin>("{}", vec![Record::new(r#"{"n":1}"#), Record::new("nope")])
            .map_err(|e| e.to_string());
        let out = out.as_ref().map(|p| (p.records[0].text().map(str::to_owned), p.rejected.clone()));
        assert_eq!(out, Ok((Some(r#"{"n":1,"seen":true}"#.into()), vec![(1, "not a JSON object".into())])));
    }
}
