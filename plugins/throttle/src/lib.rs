//! `throttle`: passes records on at most `per_second` a second (a token bucket holding up to
//! `burst` records), so that a slow sink or a rate-limited API downstream is not flooded. It
//! waits by sleeping (no CPU is spent), inside the call that brought the batch: a batch of `B`
//! records takes about `B / per_second` seconds, which counts toward the step's `timeout_ms`, so
//! keep `batch_size` under `per_second * timeout_ms / 1000`. The bucket starts full at each run;
//! the run metric `throttled_ms` adds up the time waited.
//!
//! Config: `{ "per_second": 50, "burst": 10 }`.
use std::time::{Duration, Instant};

use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use serde::Deserialize;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "throttle config",
  "type": "object",
  "properties": {
    "per_second": {
      "description": "Records passed on per second at most, on average (may be a fraction: 0.5 is one record every two seconds).",
      "type": "number", "exclusiveMinimum": 0, "maximum": 1000000
    },
    "burst": {
      "description": "Records passed on at once after a pause (default: per_second, at least 1).",
      "type": "integer", "minimum": 1, "maximum": 1000000
    }
  },
  "required": ["per_second"],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Records per second.
    pub per_second: f64,
    /// The bucket's size.
    #[serde(default)]
    pub burst: Option<u32>,
}

/// A token bucket: `rate` tokens a second, up to `size`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    rate: f64,
    size: f64,
    tokens: f64,
    at: Duration,
}

impl Bucket {
    /// A full bucket at time `now` (since any fixed start).
    pub fn new(rate: f64, size: u32, now: Duration) -> Self {
        Self {
            rate,
            size: f64::from(size),
            tokens: f64::from(size),
            at: now,
        }
    }

    /// Takes one token at time `now`: how long to wait first (zero when one is there). A token
    /// taken from an empty bucket is owed: the tokens go below zero, and the wait pays the
    /// debt back, so the next take, made once the wait is over, starts from nothing.
    pub fn take(&mut self, now: Duration) -> Duration {
        let elapsed = now.as_secs_f64() - self.at.as_secs_f64();
        self.tokens = (self.tokens + elapsed.max(0.0) * self.rate).min(self.size);
        self.at = self.at.max(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The transform.
#[derive(Debug)]
pub struct Throttle {
    start: Instant,
    bucket: Bucket,
    waited: Duration,
}

impl Transform for Throttle {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "throttle",
            env!("CARGO_PKG_VERSION"),
            "Passes records on at most per_second a second (a token bucket of burst records), \
             waiting without spending CPU.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        if !(config.per_second > 0.0 && config.per_second <= 1_000_000.0) {
            return Err(Error::InvalidConfig(format!(
                "per_second must be above 0 and at most 1000000, not {}",
                config.per_second
            )));
        }
        let burst = match config.burst {
            Some(0) => return Err(Error::InvalidConfig("burst must be at least 1".into())),
            Some(b) => b,
            None => (config.per_second.ceil() as u32).max(1),
        };
        Ok(Self {
            start: Instant::now(),
            bucket: Bucket::new(config.per_second, burst, Duration::ZERO),
            waited: Duration::ZERO,
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        let wait = self.bucket.take(self.start.elapsed());
        if !wait.is_zero() {
            std::thread::sleep(wait);
            self.waited += wait;
        }
        out.emit(record);
        Ok(())
    }

    fn end_batch(&mut self, _out: &mut Output) -> Result<(), Error> {
        let ms = self.waited.as_millis() as u64;
        if ms > 0 {
            host::count("throttled_ms", ms);
            self.waited = Duration::ZERO;
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Throttle);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::testing::TestHost;
    use autoflow_plugin_sdk::{Error, Record, parse_config};

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_bucket_lets_a_burst_through_then_one_record_per_period() {
        // 10 a second, bursts of 3.
        let mut b = Bucket::new(10.0, 3, Duration::ZERO);
        let waits: Vec<Duration> = (0..5).map(|_| b.take(Duration::ZERO)).collect();
        assert_eq!(waits[..3], [Duration::ZERO; 3]);
        assert_eq!(waits[3], 100 * MS);
        assert_eq!(waits[4], 200 * MS, "each owed token after the last");
        // A second's pause refills it, up to its size only.
        let later = Duration::from_secs(5);
        let waits: Vec<Duration> = (0..4).map(|_| b.take(later)).collect();
        assert_eq!(
            waits,
            [Duration::ZERO, Duration::ZERO, Duration::ZERO, 100 * MS]
        );
        // Half a record a second: one every two seconds.
        let mut slow = Bucket::new(0.5, 1, Duration::ZERO);
        assert_eq!(slow.take(Duration::ZERO), Duration::ZERO);
        assert_eq!(slow.take(Duration::ZERO), 2000 * MS);
        assert_eq!(slow.take(Duration::from_secs(3)), 1000 * MS);
    }

    #[test]
    fn records_pass_in_order_after_the_waits_and_configs_are_checked() {
        let mut host = TestHost::new();
        let started = Instant::now();
        let records: Vec<Record> = (0..6).map(|i| Record::new(i.to_string())).collect();
        let out = host
            .transform::<Throttle>(r#"{"per_second":50,"burst":1}"#, records.clone())
            .unwrap();
        // Five waits of 20 ms at least.
        assert!(started.elapsed() >= 100 * MS, "{:?}", started.elapsed());
        assert_eq!(out.records, records);
        // The waits were counted: on a loaded machine the bucket refills while records are
        // handled, so they may add up to less than 100 ms, never to more than the run took.
        let elapsed_ms = started.elapsed().as_millis() as u64;
        assert!(
            host.counters
                .get("throttled_ms")
                .is_some_and(|ms| *ms > 0 && *ms <= elapsed_ms),
            "{:?} in {elapsed_ms} ms",
            host.counters.get("throttled_ms")
        );
        for (config, why) in [
            (r#"{"per_second":0}"#, "per_second must be above 0"),
            (r#"{"per_second":-1}"#, "per_second must be above 0"),
            (r#"{"per_second":5,"burst":0}"#, "burst must be at least 1"),
        ] {
            let e = Throttle::open(parse_config(config).unwrap()).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidConfig(m) if m.starts_with(why)),
                "{config}: {e}"
            );
        }
        assert!(parse_config::<Config>(r#"{"burst":2}"#).is_err());
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["per_second"]));
    }
}
