//! `{{name}}`: an Autoflow source. It emits `count` records `{"n": i}`; its cursor is the last
//! `n` read, so a resumed run goes on from there.
use autoflow_plugin_sdk::*;

/// Its configuration.
#[derive(serde::Deserialize)]
#[serde(crate = "autoflow_plugin_sdk::serde", deny_unknown_fields)]
pub struct Config {
    /// How many records in all (default 3).
    #[serde(default = "three")]
    count: u64,
}

fn three() -> u64 {
    3
}

/// The source: how many records in all, and how many were read.
pub struct Plugin {
    count: u64,
    done: u64,
}

impl Source for Plugin {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new("{{name}}", "0.1.0", "Emits `count` records {\"n\": i}.").config_schema(
            r#"{"type":"object","properties":{"count":{"type":"integer","minimum":0}},"additionalProperties":false}"#,
        )
    }
    fn open(config: Config, cursor: Option<String>) -> Result<Self> {
        let done = match cursor {
            Some(c) => c.parse().map_err(|_| Error::Fatal(format!("bad cursor {c:?}")))?,
            None => 0,
        };
        Ok(Plugin { count: config.count, done })
    }
    fn next(&mut self, max: u32) -> Result<Option<Batch>> {
        if self.done >= self.count {
            return Ok(None);
        }
        let end = self.count.min(self.done + u64::from(max));
        let records = (self.done + 1..=end).map(|n| Record::new(format!("{{\"n\":{n}}}"))).collect();
        self.done = end;
        Ok(Some(Batch { records, cursor: Some(end.to_string()) }))
    }
}

export_source!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use autoflow_plugin_sdk::testing::TestHost;

    #[test]
    fn emits_count_records_and_resumes() {
        let batches = TestHost::new().source::<Plugin>(r#"{"count":3}"#, Some("1".into()), 10).map_err(|e| e.to_string());
        let values: Result<Vec<_>, _> =
            batches.map(|b| b.iter().flat_map(|b| &b.records).map(|r| r.text().unwrap_or_default().to_owned()).collect());
        assert_eq!(values, Ok(vec![r#"{"n":2}"#.to_owned(), r#"{"n":3}"#.to_owned()]));
    }
}
