//! `aggregate`: group-by aggregates (count, sum, min, max, avg, first, last, distinct) over
//! tumbling or sliding windows, on event time or arrival time.
//!
//! Config: `{ "group_by": ["country"], "window": { "size_ms": 60000, "slide_ms": 60000,
//! "time": "event", "time_field": "ts", "allowed_lateness_ms": 0 },
//! "aggregates": { "orders": { "op": "count" }, "total": { "op": "sum", "field": "amount" } } }`.
//!
//! The watermark is the latest time seen less the allowed lateness; a window `[start, end)`
//! closes when the watermark reaches its end, and its rows (one per group) are passed on at the
//! end of that batch. A record for a window already closed is rejected as late. At the end of
//! the run (`finish`) the open windows and the watermark go to the step's durable state, so the
//! next run goes on with them, or, with `emit_open_at_end: true`, they are passed on as well.
//! The state is committed with the run: a run that fails leaves the last committed windows for
//! the next one, which rereads the same records from the source's committed cursor.
use std::collections::BTreeMap;

use autoflow_json_path::{Path, object};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod window;

#[cfg(test)]
mod tests;

pub use window::{Acc, Op};

/// The state entry holding the watermark and the open windows.
pub const STATE_KEY: &str = "aggregate.windows";
/// Most windows a record may fall into (`size_ms / slide_ms`).
pub const MAX_WINDOWS_PER_RECORD: i64 = 1000;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "aggregate config",
  "description": "Group-by aggregates over tumbling or sliding windows on event or arrival time.",
  "type": "object",
  "properties": {
    "group_by": { "type": "array", "items": { "$ref": "#/$defs/path" } },
    "window": {
      "type": "object",
      "properties": {
        "size_ms": { "type": "integer", "minimum": 1 },
        "slide_ms": { "description": "Defaults to size_ms (tumbling windows).", "type": "integer", "minimum": 1 },
        "time": { "enum": ["event", "arrival"], "default": "event" },
        "time_field": { "description": "Event time in ms since the epoch; the record's timestamp when left out.", "$ref": "#/$defs/path" },
        "allowed_lateness_ms": { "type": "integer", "minimum": 0, "default": 0 }
      },
      "required": ["size_ms"],
      "additionalProperties": false
    },
    "aggregates": {
      "type": "object",
      "minProperties": 1,
      "additionalProperties": {
        "type": "object",
        "properties": {
          "op": { "enum": ["count", "sum", "min", "max", "avg", "first", "last", "distinct"] },
          "field": { "$ref": "#/$defs/path" }
        },
        "required": ["op"],
        "additionalProperties": false
      }
    },
    "emit_open_at_end": { "type": "boolean", "default": false },
    "max_open": { "description": "Most open (window, group) rows held at once.", "type": "integer", "minimum": 1, "default": 100000 }
  },
  "required": ["window", "aggregates"],
  "additionalProperties": false,
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// Which clock places a record in its windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Time {
    /// The record's own time: `time_field`, else its timestamp.
    #[default]
    Event,
    /// When the step handles it.
    Arrival,
}

/// The window settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Length of a window.
    pub size_ms: i64,
    /// Distance between window starts; `size_ms` when left out.
    #[serde(default)]
    pub slide_ms: Option<i64>,
    /// Event or arrival time.
    #[serde(default)]
    pub time: Time,
    /// Where the event time is (ms since the epoch).
    #[serde(default)]
    pub time_field: Option<String>,
    /// How far behind the latest time a record may be and still count.
    #[serde(default)]
    pub allowed_lateness_ms: i64,
}

/// One aggregate as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// What to compute.
    pub op: Op,
    /// The field it reads (not needed by `count`, which then counts records).
    #[serde(default)]
    pub field: Option<String>,
}

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Fields whose values make a group; one group when left out.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// The windows.
    pub window: WindowConfig,
    /// Output name -> aggregate.
    pub aggregates: BTreeMap<String, AggregateConfig>,
    /// Pass the open windows on at the end of the run instead of keeping them.
    #[serde(default)]
    pub emit_open_at_end: bool,
    /// Most open (window, group) rows at once.
    #[serde(default = "default_max_open")]
    pub max_open: usize,
}

fn default_max_open() -> usize {
    100_000
}

/// What the state holds between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// The latest time seen.
    latest: Option<i64>,
    /// Open windows: start -> group key (JSON array text) -> one accumulator per aggregate.
    windows: BTreeMap<i64, BTreeMap<String, Vec<Acc>>>,
}

/// The transform.
#[derive(Debug)]
pub struct Aggregate {
    group_by: Vec<Path>,
    size: i64,
    slide: i64,
    time: Time,
    time_field: Option<Path>,
    lateness: i64,
    aggregates: Vec<(String, Op, Option<Path>)>,
    emit_open_at_end: bool,
    max_open: usize,
    open: usize,
    saved: Saved,
    late: u64,
}

impl Aggregate {
    /// Checks `config` and loads the open windows from `saved` (the state entry); an error
    /// names the offending key.
    pub fn new(config: Config, saved: Option<&[u8]>) -> Result<Self, String> {
        let w = &config.window;
        let slide = w.slide_ms.unwrap_or(w.size_ms);
        if w.size_ms < 1 {
            return Err(format!("window.size_ms: {} must be at least 1", w.size_ms));
        }
        if slide < 1 || slide > w.size_ms {
            return Err(format!(
                "window.slide_ms: {slide} must be between 1 and size_ms ({})",
                w.size_ms
            ));
        }
        let per_record = (w.size_ms + slide - 1) / slide;
        if per_record > MAX_WINDOWS_PER_RECORD {
            return Err(format!(
                "window.slide_ms: a record would fall into {per_record} windows (size_ms / slide_ms); at most {MAX_WINDOWS_PER_RECORD}"
            ));
        }
        if w.allowed_lateness_ms < 0 {
            return Err("window.allowed_lateness_ms: must not be negative".into());
        }
        if w.time == Time::Arrival && w.time_field.is_some() {
            return Err("window.time_field: only with time: event".into());
        }
        let time_field = match &w.time_field {
            Some(p) => Some(Path::parse(p).map_err(|e| format!("window.time_field: {e}"))?),
            None => None,
        };
        let group_by = Path::parse_all("group_by", &config.group_by)?;
        if config.aggregates.is_empty() {
            return Err("aggregates: name at least one".into());
        }
        let mut aggregates = Vec::new();
        for (name, a) in &config.aggregates {
            let field = match &a.field {
                Some(p) => {
                    Some(Path::parse(p).map_err(|e| format!("aggregates.{name}.field: {e}"))?)
                }
                None if a.op == Op::Count => None,
                None => {
                    return Err(format!(
                        "aggregates.{name}.field: {} needs a field",
                        a.op.name()
                    ));
                }
            };
            aggregates.push((name.clone(), a.op, field));
        }
        let saved: Saved = match saved {
            None => Saved::default(),
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| {
                format!("the saved windows cannot be read ({e}): the state of another version?")
            })?,
        };
        if saved
            .windows
            .values()
            .flat_map(BTreeMap::values)
            .any(|accs| accs.len() != aggregates.len())
        {
            return Err(
                "aggregates: the saved windows were made with other aggregates; rename the step to start afresh"
                    .into(),
            );
        }
        let open = saved.windows.values().map(BTreeMap::len).sum();
        Ok(Aggregate {
            group_by,
            size: w.size_ms,
            slide,
            time: w.time,
            time_field,
            lateness: w.allowed_lateness_ms,
            aggregates,
            emit_open_at_end: config.emit_open_at_end,
            max_open: config.max_open.max(1),
            open,
            saved,
            late: 0,
        })
    }

    /// The record's time, or why it has none.
    fn time_of(&self, record: &Record, value: &Map<String, Value>) -> Result<i64, String> {
        match (self.time, &self.time_field) {
            (Time::Arrival, _) => Ok(now_ms()),
            (Time::Event, Some(path)) => match path.get(value) {
                Some(Value::Number(n)) => n
                    .as_i64()
                    .or_else(|| n.as_f64().map(|f| f as i64))
                    .ok_or_else(|| format!("{} is not a time in ms", path.as_str())),
                Some(other) => Err(format!(
                    "{} is {}, not a time in ms since the epoch",
                    path.as_str(),
                    autoflow_json_path::kind(other)
                )),
                None => Err(format!("{} is missing", path.as_str())),
            },
            (Time::Event, None) => record
                .timestamp
                .ok_or_else(|| "the record has no timestamp (set window.time_field)".to_string()),
        }
    }

    /// The watermark: windows ending at or before it are closed.
    fn watermark(&self) -> Option<i64> {
        self.saved.latest.map(|t| t.saturating_sub(self.lateness))
    }

    /// Adds one record; the error is why it was rejected.
    fn add(&mut self, record: &Record) -> Result<(), String> {
        let value = object(&record.value)?;
        let t = self.time_of(record, &value)?;
        // The starts of the windows holding t: multiples of slide in (t - size, t].
        let last = t.div_euclid(self.slide) * self.slide;
        let first = last - (self.size - 1).div_euclid(self.slide) * self.slide;
        if let Some(mark) = self.watermark()
            && last + self.size <= mark
        {
            return Err(format!(
                "late: time {t} is in windows closed by the watermark {mark} (allowed lateness {} ms)",
                self.lateness
            ));
        }
        let group: Vec<&Value> = self
            .group_by
            .iter()
            .map(|p| p.get(&value).unwrap_or(&Value::Null))
            .collect();
        let group = serde_json::to_string(&group).map_err(|e| e.to_string())?;
        let inputs: Vec<Option<&Value>> = self
            .aggregates
            .iter()
            .map(|(_, _, field)| {
                field
                    .as_ref()
                    .map(|p| p.get(&value).unwrap_or(&Value::Null))
            })
            .collect();
        for ((name, op, _), input) in self.aggregates.iter().zip(&inputs) {
            op.check(*input)
                .map_err(|e| format!("aggregate {name}: {e}"))?;
        }
        let mark = self.watermark();
        let mut start = first;
        while start <= last {
            let closed = mark.is_some_and(|m| start + self.size <= m);
            if !closed {
                let groups = self.saved.windows.entry(start).or_default();
                if !groups.contains_key(&group) {
                    if self.open >= self.max_open {
                        return Err(format!(
                            "more than max_open ({}) open (window, group) rows",
                            self.max_open
                        ));
                    }
                    self.open += 1;
                    groups.insert(group.clone(), vec![Acc::default(); self.aggregates.len()]);
                }
                if let Some(accs) = groups.get_mut(&group) {
                    for ((_, op, _), (acc, input)) in
                        self.aggregates.iter().zip(accs.iter_mut().zip(&inputs))
                    {
                        acc.add(*op, *input);
                    }
                }
            }
            start += self.slide;
        }
        self.saved.latest = Some(self.saved.latest.map_or(t, |l| l.max(t)));
        Ok(())
    }

    /// Passes on the rows of every window that ends at or before `until` (all with `None`).
    fn emit_closed(&mut self, until: Option<i64>, out: &mut Output) -> Result<(), Error> {
        let size = self.size;
        let starts: Vec<i64> = self
            .saved
            .windows
            .keys()
            .copied()
            .take_while(|s| until.is_none_or(|u| s + size <= u))
            .collect();
        for start in starts {
            let Some(groups) = self.saved.windows.remove(&start) else {
                continue;
            };
            self.open -= groups.len();
            for (group, accs) in groups {
                out.emit(self.row(start, &group, &accs)?);
            }
        }
        Ok(())
    }

    /// One output row: the window, the group's fields and each aggregate.
    fn row(&self, start: i64, group: &str, accs: &[Acc]) -> Result<Record, Error> {
        let values: Vec<Value> = serde_json::from_str(group)
            .map_err(|e| Error::Fatal(format!("a group key is not JSON: {e}")))?;
        let mut row = Map::new();
        row.insert("window_start".into(), start.into());
        row.insert("window_end".into(), (start + self.size).into());
        for (path, v) in self.group_by.iter().zip(values) {
            row.insert(path.as_str().to_string(), v);
        }
        for ((name, op, _), acc) in self.aggregates.iter().zip(accs) {
            row.insert(name.clone(), acc.value(*op));
        }
        let mut record = Record::new(Value::Object(row).to_string());
        record.timestamp = Some(start + self.size);
        Ok(record)
    }
}

/// Milliseconds since the Unix epoch, by the host's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Transform for Aggregate {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "aggregate",
            env!("CARGO_PKG_VERSION"),
            "Group-by aggregates (count, sum, min, max, avg, first, last, distinct) over tumbling \
             or sliding windows on event or arrival time, with allowed lateness; open windows \
             are kept across runs in the step state.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        let saved = host::state_get(STATE_KEY);
        Aggregate::new(config, saved.as_deref()).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        if let Err(reason) = self.add(&record) {
            if reason.starts_with("more than max_open") {
                return Err(Error::Fatal(reason));
            }
            if reason.starts_with("late:") {
                self.late += 1;
            }
            out.reject(reason);
        }
        Ok(())
    }

    fn end_batch(&mut self, out: &mut Output) -> Result<(), Error> {
        if self.late > 0 {
            host::count("late", std::mem::take(&mut self.late));
        }
        match self.watermark() {
            Some(mark) => self.emit_closed(Some(mark), out),
            None => Ok(()),
        }
    }

    fn finish(&mut self, out: &mut Output) -> Result<(), Error> {
        if self.emit_open_at_end {
            self.emit_closed(None, out)?;
        }
        let saved = serde_json::to_vec(&self.saved)
            .map_err(|e| Error::Fatal(format!("cannot save the windows: {e}")))?;
        host::state_set(STATE_KEY, &saved);
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Aggregate);
