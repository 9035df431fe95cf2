//! The pipeline parser and validator: any text, read as YAML, JSON or by detection (the
//! input's first byte chooses), is parsed and validated without a panic; a pipeline that parses
//! survives the way it is stored (as JSON, parsed back when a version is loaded) unchanged;
//! and the schedule of a valid one is evaluated as the ticker does, in bounded time.
#![no_main]

use autoflow::pipeline::cron::Cron;
use autoflow::pipeline::{DEFAULT_MAX_CATCHUP, Format, ValidationPolicy, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let hint = match first % 3 {
        0 => None,
        1 => Some(Format::Yaml),
        _ => Some(Format::Json),
    };
    let pipeline = match parse(text, hint) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let stored = serde_json::to_string(&pipeline).expect("a parsed pipeline serialises");
    match parse(&stored, Some(Format::Json)) {
        Ok(back) => assert_eq!(back, pipeline, "stored as {stored}"),
        Err(e) => panic!("a parsed pipeline does not parse back from its JSON: {e}\n{stored}"),
    }
    let policy = ValidationPolicy {
        allowed_mount_roots: vec![std::env::temp_dir()],
        base_dir: std::env::temp_dir(),
        ..ValidationPolicy::default()
    };
    match pipeline.validate(&policy) {
        Ok(validated) => {
            let _ = validated.topological_order();
            if let Some(s) = &pipeline.schedule
                && let Ok(cron) = Cron::new(&s.cron, &s.timezone)
            {
                // 2027-01-15, and the hour before it.
                let now = 1_800_000_000_000;
                let _ = cron.next_after(now);
                let max = s.max_catchup.unwrap_or(DEFAULT_MAX_CATCHUP);
                let _ = cron.due(now - 3_600_000, now, s.catchup, max);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
