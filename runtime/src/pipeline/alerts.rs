//! Alert rules of a pipeline (`alerts: [{ when: run_failed, channels: [ops] }]`): what each
//! rule watches, its thresholds, and its verdict on a run's end (firing, passing, or no
//! opinion), a pure function the store applies in the transaction that ends the run. The
//! rules about time (`sla_missed`, `schedule_lag`) are also judged by the clock: see
//! [`crate::alerts::watch`].
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// What the rule watches.
    pub when: AlertWhen,
    /// The tenant's channels (`PUT /v1/channels/{name}`) notified, by name.
    pub channels: Vec<String>,
    /// How bad it is (default `error`).
    #[serde(default)]
    pub severity: Severity,
    /// `duration_over`: a run that took longer than this many ms fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_ms: Option<u64>,
    /// `rejected_over`: more rejected records than this fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rejected: Option<u64>,
    /// `rejected_over`: a larger share of rejected records (of those the sources read,
    /// `0.0..=1.0`) than this fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rejected_ratio: Option<f64>,
    /// `sla_missed`: the time of day (`HH:MM` or `HH:MM:SS`) by which a run must have
    /// succeeded since the day began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// `sla_missed`: the IANA time zone of `deadline` (default: the schedule's, else UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `schedule_lag`: a slot whose run has not started this many ms after its time fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lag_ms: Option<u64>,
    /// `counter`: the name of the counter a plugin counts (`count` in the host interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    /// `counter`: only this step's counter (default: the sum over every step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// `counter`: a run whose counter is above this fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<u64>,
    /// `counter`: a run whose counter is below this fires (a counter never counted is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<u64>,
    /// `dead_letters_over`: more dead letters of the pipeline waiting for a replay than this
    /// fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dead_letters: Option<u64>,
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertWhen {
    /// A run failed, after its retries. Passes on a run that succeeds.
    RunFailed,
    /// An attempt failed and the run was queued again. Passes on a run that succeeds at its
    /// first attempt.
    RunRetried,
    /// A run (succeeded or failed) took longer than `max_duration_ms`.
    DurationOver,
    /// A run rejected more records than `max_rejected` or `max_rejected_ratio`.
    RejectedOver,
    /// A run succeeded having written no record (its sinks' records out).
    ZeroRecords,
    /// No run succeeded between the start of the day and `deadline` (checked at the deadline,
    /// also while a run is still going). Passes on a run that succeeds.
    SlaMissed,
    /// The newest schedule slot's run had not started `max_lag_ms` after the slot's time (a
    /// slot skipped because a run was still going counts). Passes when a slot's run starts
    /// in time.
    ScheduleLag,
    /// A run failed at its last allowed attempt (its retries used up; a failure that is not
    /// retried, such as a bad config, says nothing). Passes on a run that succeeds.
    RetriesExhausted,
    /// A succeeded run's `counter` (of one `step`, else summed over the steps) was above
    /// `above` or below `below`.
    Counter,
    /// At a run's end, more than `max_dead_letters` dead letters of the pipeline wait for a
    /// replay. Passes at an end with no more than that.
    DeadLettersOver,
    /// The worker running an attempt stopped renewing its lease (it died, hung, or lost the
    /// database) and the attempt was taken back. Passes on a run that succeeds.
    WorkerLost,
}

impl AlertWhen {
    /// The keyword used in pipeline files.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertWhen::RunFailed => "run_failed",
            AlertWhen::RunRetried => "run_retried",
            AlertWhen::DurationOver => "duration_over",
            AlertWhen::RejectedOver => "rejected_over",
            AlertWhen::ZeroRecords => "zero_records",
            AlertWhen::SlaMissed => "sla_missed",
            AlertWhen::ScheduleLag => "schedule_lag",
            AlertWhen::RetriesExhausted => "retries_exhausted",
            AlertWhen::Counter => "counter",
            AlertWhen::DeadLettersOver => "dead_letters_over",
            AlertWhen::WorkerLost => "worker_lost",
        }
    }
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Worth a look.
    Warning,
    /// Something is broken (the default).
    #[default]
    Error,
    /// Wake someone up.
    Critical,
}

impl Severity {
    /// The keyword used in pipeline files.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// How a run's attempt ended, as the rules see it.
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    /// The run ended (`false`: the attempt failed and the run was queued again).
    pub ended: bool,
    /// It ended `succeeded`.
    pub succeeded: bool,
    /// It ended `cancelled`.
    pub cancelled: bool,
    /// The attempt that ended (1 = the first).
    pub attempt: i64,
    /// The attempts the run may make (a run failed at `attempt >= max_attempts` used them up).
    pub max_attempts: i64,
    /// Its wall-clock time, ms (from the report, else from the attempt's start).
    pub duration_ms: u64,
    /// Records the source steps read.
    pub records_read: u64,
    /// Records rejected by any step.
    pub rejected: u64,
    /// Records the sink steps wrote.
    pub records_written: u64,
    /// Whether a report was there to count from.
    pub counted: bool,
    /// The plugins' own counters, by step id, then counter name.
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
    /// The pipeline's dead letters waiting for a replay, when a rule asked.
    pub dead_letters: Option<u64>,
    /// The worker whose lease on the attempt expired (the attempt was lost, not ended).
    pub lost: Option<String>,
}

impl RunEnd {
    /// Fills the counts from a run report's JSON (`steps[].kind`, `records_in`,
    /// `records_out`, `rejected`, `duration_ms`).
    pub fn count(&mut self, report: &serde_json::Value) {
        let Some(steps) = report.get("steps").and_then(|s| s.as_array()) else {
            return;
        };
        self.counted = true;
        let n = |s: &serde_json::Value, k: &str| s.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        for s in steps {
            let kind = s.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
            if kind == "source" {
                self.records_read += n(s, "records_in");
            }
            if kind == "sink" {
                self.records_written += n(s, "records_out");
            }
            self.rejected += n(s, "rejected");
            let (Some(id), Some(counters)) = (
                s.get("id").and_then(|v| v.as_str()),
                s.get("counters").and_then(|c| c.as_object()),
            ) else {
                continue;
            };
            let counted = counters
                .iter()
                .filter_map(|(name, v)| Some((name.clone(), v.as_u64()?)))
                .collect();
            self.counters.insert(id.to_string(), counted);
        }
        if let Some(ms) = report.get("duration_ms").and_then(|v| v.as_u64()) {
            self.duration_ms = ms;
        }
    }
}

impl AlertRule {
    /// The rule's verdict on `end`: `Some(true)` it fires, `Some(false)` it passes, `None`
    /// the end says nothing about it (a cancelled run, a retry for most rules).
    pub fn verdict(&self, end: &RunEnd) -> Option<bool> {
        if end.cancelled {
            return None;
        }
        if end.lost.is_some() {
            return (self.when == AlertWhen::WorkerLost).then_some(true);
        }
        match self.when {
            AlertWhen::RunFailed => end.ended.then_some(!end.succeeded),
            AlertWhen::RunRetried if !end.ended => Some(true),
            AlertWhen::RunRetried => (end.succeeded && end.attempt <= 1).then_some(false),
            AlertWhen::DurationOver => {
                let max = self.max_duration_ms?;
                end.ended.then_some(end.duration_ms > max)
            }
            AlertWhen::RejectedOver => {
                if !end.ended || !end.counted {
                    return None;
                }
                let by_count = self.max_rejected.is_some_and(|max| end.rejected > max);
                let by_ratio = self.max_rejected_ratio.is_some_and(|max| {
                    end.records_read > 0 && end.rejected as f64 / end.records_read as f64 > max
                });
                Some(by_count || by_ratio)
            }
            AlertWhen::ZeroRecords => {
                (end.ended && end.succeeded && end.counted).then_some(end.records_written == 0)
            }
            AlertWhen::SlaMissed | AlertWhen::WorkerLost => {
                (end.ended && end.succeeded).then_some(false)
            }
            AlertWhen::ScheduleLag => None,
            AlertWhen::RetriesExhausted if !end.ended => None,
            AlertWhen::RetriesExhausted if end.succeeded => Some(false),
            AlertWhen::RetriesExhausted => (end.attempt >= end.max_attempts).then_some(true),
            AlertWhen::Counter => {
                if !(end.ended && end.succeeded && end.counted) {
                    return None;
                }
                let n = self.counted(end);
                Some(self.above.is_some_and(|a| n > a) || self.below.is_some_and(|b| n < b))
            }
            AlertWhen::DeadLettersOver => {
                let (n, max) = (end.dead_letters?, self.max_dead_letters?);
                end.ended.then_some(n > max)
            }
        }
    }

    /// `counter`: the value of the rule's counter in `end` (its step's, else the sum).
    fn counted(&self, end: &RunEnd) -> u64 {
        let name = self.counter.as_deref().unwrap_or_default();
        end.counters
            .iter()
            .filter(|(step, _)| self.step.as_ref().is_none_or(|s| s == *step))
            .filter_map(|(_, counters)| counters.get(name))
            .sum()
    }

    /// What the rule says when it fires on `end`, for people.
    pub fn describe(&self, end: &RunEnd) -> String {
        match self.when {
            AlertWhen::RunFailed => "the run failed".into(),
            AlertWhen::RunRetried => format!("attempt {} failed; the run is retried", end.attempt),
            AlertWhen::DurationOver => format!(
                "the run took {} ms, over {} ms",
                end.duration_ms,
                self.max_duration_ms.unwrap_or(0)
            ),
            AlertWhen::RejectedOver => format!(
                "{} of {} records rejected (over {})",
                end.rejected,
                end.records_read,
                match (self.max_rejected, self.max_rejected_ratio) {
                    (Some(c), Some(r)) => format!("{c} or a ratio of {r}"),
                    (Some(c), None) => c.to_string(),
                    (None, Some(r)) => format!("a ratio of {r}"),
                    (None, None) => "nothing".into(),
                }
            ),
            AlertWhen::ZeroRecords => "the run wrote no records".into(),
            AlertWhen::SlaMissed => format!(
                "no successful run by {}",
                self.deadline.as_deref().unwrap_or("?")
            ),
            AlertWhen::ScheduleLag => format!(
                "a schedule slot did not start within {} ms",
                self.max_lag_ms.unwrap_or(0)
            ),
            AlertWhen::RetriesExhausted => format!(
                "the run failed at its last attempt ({} of {})",
                end.attempt, end.max_attempts
            ),
            AlertWhen::Counter => {
                let name = self.counter.as_deref().unwrap_or_default();
                let of = self
                    .step
                    .as_ref()
                    .map_or(String::new(), |s| format!(" of step {s}"));
                let n = self.counted(end);
                match (self.above, self.below) {
                    (Some(a), _) if n > a => format!("counter {name}{of} was {n}, above {a}"),
                    (_, Some(b)) => format!("counter {name}{of} was {n}, below {b}"),
                    _ => format!("counter {name}{of} was {n}"),
                }
            }
            AlertWhen::DeadLettersOver => format!(
                "{} dead letters wait for a replay (over {})",
                end.dead_letters.unwrap_or(0),
                self.max_dead_letters.unwrap_or(0)
            ),
            AlertWhen::WorkerLost => format!(
                "worker {} was lost during attempt {}: its lease expired and the attempt was taken back",
                end.lost.as_deref().unwrap_or("?"),
                end.attempt
            ),
        }
    }

    /// The rule's identity for deduplication: what it watches and its thresholds (an edited
    /// threshold is another rule, with incidents of its own).
    pub fn key(&self) -> String {
        let mut key = self.when.as_str().to_string();
        if let Some(ms) = self.max_duration_ms {
            key.push_str(&format!(":duration>{ms}"));
        }
        if let Some(n) = self.max_rejected {
            key.push_str(&format!(":rejected>{n}"));
        }
        if let Some(r) = self.max_rejected_ratio {
            key.push_str(&format!(":ratio>{r}"));
        }
        if let Some(d) = &self.deadline {
            key.push_str(&format!(":by={d}"));
        }
        if let Some(z) = &self.timezone {
            key.push_str(&format!(":tz={z}"));
        }
        if let Some(ms) = self.max_lag_ms {
            key.push_str(&format!(":lag>{ms}"));
        }
        if let Some(c) = &self.counter {
            key.push_str(&format!(":counter={c}"));
        }
        if let Some(s) = &self.step {
            key.push_str(&format!(":step={s}"));
        }
        if let Some(n) = self.above {
            key.push_str(&format!(":above={n}"));
        }
        if let Some(n) = self.below {
            key.push_str(&format!(":below={n}"));
        }
        if let Some(n) = self.max_dead_letters {
            key.push_str(&format!(":dead>{n}"));
        }
        key
    }

    /// The rule's own problems, `(field, message)`, its field relative to the rule.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut add = |f: &str, m: String| out.push((f.to_string(), m));
        if self.channels.is_empty() {
            add("channels", "a rule needs at least one channel".into());
        }
        for (j, c) in self.channels.iter().enumerate() {
            if !is_valid_channel_name(c) {
                add(
                    &format!("channels[{j}]"),
                    format!("invalid channel name {c:?} (use a-z, 0-9, - and _)"),
                );
            }
        }
        let when = self.when;
        let thresholds = [
            (
                "max_duration_ms",
                self.max_duration_ms.is_some(),
                AlertWhen::DurationOver,
            ),
            (
                "max_rejected",
                self.max_rejected.is_some(),
                AlertWhen::RejectedOver,
            ),
            (
                "max_rejected_ratio",
                self.max_rejected_ratio.is_some(),
                AlertWhen::RejectedOver,
            ),
            ("deadline", self.deadline.is_some(), AlertWhen::SlaMissed),
            ("timezone", self.timezone.is_some(), AlertWhen::SlaMissed),
            (
                "max_lag_ms",
                self.max_lag_ms.is_some(),
                AlertWhen::ScheduleLag,
            ),
            ("counter", self.counter.is_some(), AlertWhen::Counter),
            ("step", self.step.is_some(), AlertWhen::Counter),
            ("above", self.above.is_some(), AlertWhen::Counter),
            ("below", self.below.is_some(), AlertWhen::Counter),
            (
                "max_dead_letters",
                self.max_dead_letters.is_some(),
                AlertWhen::DeadLettersOver,
            ),
        ];
        for (field, given, owner) in thresholds {
            if given && when != owner {
                add(field, format!("only for when: {}", owner.as_str()));
            }
        }
        if when == AlertWhen::DurationOver && self.max_duration_ms.is_none() {
            add(
                "max_duration_ms",
                "duration_over needs max_duration_ms".into(),
            );
        }
        if when == AlertWhen::RejectedOver
            && self.max_rejected.is_none()
            && self.max_rejected_ratio.is_none()
        {
            add(
                "max_rejected",
                "rejected_over needs max_rejected or max_rejected_ratio".into(),
            );
        }
        if let Some(r) = self.max_rejected_ratio
            && !(0.0..=1.0).contains(&r)
        {
            add(
                "max_rejected_ratio",
                format!("must be between 0 and 1, got {r}"),
            );
        }
        match (&self.deadline, when) {
            (None, AlertWhen::SlaMissed) => {
                add("deadline", "sla_missed needs a deadline (HH:MM)".into());
            }
            (Some(d), _) if time_of_day(d).is_none() => add(
                "deadline",
                format!("{d:?} is not a time of day (HH:MM or HH:MM:SS)"),
            ),
            _ => {}
        }
        if let Some(z) = &self.timezone
            && let Err(e) = super::cron::parse_timezone(z)
        {
            add("timezone", e);
        }
        if when == AlertWhen::ScheduleLag && self.max_lag_ms.is_none() {
            add("max_lag_ms", "schedule_lag needs max_lag_ms".into());
        }
        if when == AlertWhen::Counter {
            match &self.counter {
                None => add("counter", "counter needs the counter's name".into()),
                Some(c) if c.is_empty() || c.len() > 128 => {
                    add("counter", "must be 1 to 128 characters".into());
                }
                Some(_) => {}
            }
            if self.above.is_none() && self.below.is_none() {
                add("above", "counter needs above or below".into());
            }
        }
        if when == AlertWhen::DeadLettersOver && self.max_dead_letters.is_none() {
            add(
                "max_dead_letters",
                "dead_letters_over needs max_dead_letters".into(),
            );
        }
        out
    }

    /// Whether the clock judges it (besides the runs' ends).
    pub fn is_timed(&self) -> bool {
        matches!(self.when, AlertWhen::SlaMissed | AlertWhen::ScheduleLag)
    }
}

/// `HH:MM` or `HH:MM:SS` as a time of day.
pub fn time_of_day(text: &str) -> Option<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| chrono::NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// Whether `name` may name a channel: `[a-z0-9][a-z0-9-_]{0,62}`, as a pipeline's name.
pub fn is_valid_channel_name(name: &str) -> bool {
    super::is_valid_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(when: AlertWhen) -> AlertRule {
        AlertRule {
            when,
            channels: vec!["ops".into()],
            severity: Severity::Error,
            max_duration_ms: None,
            max_rejected: None,
            max_rejected_ratio: None,
            deadline: None,
            timezone: None,
            max_lag_ms: None,
            counter: None,
            step: None,
            above: None,
            below: None,
            max_dead_letters: None,
        }
    }

    fn ended(succeeded: bool) -> RunEnd {
        RunEnd {
            ended: true,
            succeeded,
            attempt: 1,
            counted: true,
            ..RunEnd::default()
        }
    }

    #[test]
    fn verdicts_follow_the_rule() {
        let failed = rule(AlertWhen::RunFailed);
        assert_eq!(failed.verdict(&ended(false)), Some(true));
        assert_eq!(failed.verdict(&ended(true)), Some(false));
        assert_eq!(failed.verdict(&RunEnd::default()), None, "a retry");
        let retried = rule(AlertWhen::RunRetried);
        assert_eq!(retried.verdict(&RunEnd::default()), Some(true));
        let mut second = ended(true);
        second.attempt = 2;
        assert_eq!(retried.verdict(&second), None);
        assert_eq!(retried.verdict(&ended(true)), Some(false));
        let mut slow = rule(AlertWhen::DurationOver);
        slow.max_duration_ms = Some(100);
        let mut end = ended(true);
        end.duration_ms = 101;
        assert_eq!(slow.verdict(&end), Some(true));
        end.duration_ms = 100;
        assert_eq!(slow.verdict(&end), Some(false));
        let mut rejected = rule(AlertWhen::RejectedOver);
        rejected.max_rejected_ratio = Some(0.1);
        end.records_read = 100;
        end.rejected = 10;
        assert_eq!(rejected.verdict(&end), Some(false));
        end.rejected = 11;
        assert_eq!(rejected.verdict(&end), Some(true));
        rejected.max_rejected_ratio = None;
        rejected.max_rejected = Some(20);
        assert_eq!(rejected.verdict(&end), Some(false));
        let zero = rule(AlertWhen::ZeroRecords);
        assert_eq!(zero.verdict(&end), Some(true));
        end.records_written = 1;
        assert_eq!(zero.verdict(&end), Some(false));
        let mut cancelled = ended(false);
        cancelled.cancelled = true;
        assert_eq!(failed.verdict(&cancelled), None);
    }

    #[test]
    fn retries_counters_dead_letters_and_lost_workers_have_verdicts() {
        let exhausted = rule(AlertWhen::RetriesExhausted);
        let mut end = ended(false);
        end.max_attempts = 3;
        assert_eq!(
            exhausted.verdict(&end),
            None,
            "failed before its last attempt"
        );
        end.attempt = 3;
        assert_eq!(exhausted.verdict(&end), Some(true));
        assert!(exhausted.describe(&end).contains("(3 of 3)"));
        assert_eq!(exhausted.verdict(&ended(true)), Some(false));
        assert_eq!(exhausted.verdict(&RunEnd::default()), None, "a retry");

        let mut low = rule(AlertWhen::Counter);
        low.counter = Some("rows".into());
        low.below = Some(5);
        let mut end = ended(true);
        end.counters
            .insert("a".into(), [("rows".to_string(), 2)].into());
        end.counters
            .insert("b".into(), [("rows".to_string(), 2)].into());
        assert_eq!(low.verdict(&end), Some(true), "2 + 2 < 5");
        assert_eq!(low.describe(&end), "counter rows was 4, below 5");
        low.step = Some("a".into());
        low.below = Some(2);
        assert_eq!(low.verdict(&end), Some(false), "step a's 2 is not below 2");
        low.counter = Some("never".into());
        assert_eq!(
            low.verdict(&end),
            Some(true),
            "a counter never counted is 0"
        );
        let mut high = rule(AlertWhen::Counter);
        high.counter = Some("rows".into());
        high.above = Some(3);
        assert_eq!(high.verdict(&end), Some(true));
        assert_eq!(high.verdict(&ended(false)), None, "judged on successes");

        let mut dead = rule(AlertWhen::DeadLettersOver);
        dead.max_dead_letters = Some(10);
        let mut end = ended(false);
        assert_eq!(dead.verdict(&end), None, "not counted");
        end.dead_letters = Some(11);
        assert_eq!(dead.verdict(&end), Some(true));
        end.dead_letters = Some(10);
        assert_eq!(dead.verdict(&end), Some(false));

        let lost_rule = rule(AlertWhen::WorkerLost);
        let lost = RunEnd {
            lost: Some("w1".into()),
            attempt: 2,
            ..RunEnd::default()
        };
        assert_eq!(lost_rule.verdict(&lost), Some(true));
        assert!(lost_rule.describe(&lost).contains("worker w1"));
        for other in [AlertWhen::RunRetried, AlertWhen::RunFailed] {
            assert_eq!(rule(other).verdict(&lost), None, "{other:?}");
        }
        assert_eq!(lost_rule.verdict(&ended(true)), Some(false));
        assert_eq!(lost_rule.verdict(&ended(false)), None);
    }

    #[test]
    fn counts_come_from_the_report() {
        let report = serde_json::json!({"duration_ms": 7, "steps": [
            {"kind": "source", "records_in": 10, "records_out": 10, "rejected": 0},
            {"kind": "transform", "records_in": 10, "records_out": 8, "rejected": 2},
            {"kind": "sink", "records_in": 8, "records_out": 8, "rejected": 0}]});
        let mut end = ended(true);
        end.count(&report);
        assert_eq!(
            (
                end.records_read,
                end.rejected,
                end.records_written,
                end.duration_ms
            ),
            (10, 2, 8, 7)
        );
        let report = serde_json::json!({"steps": [
            {"id": "out", "kind": "sink", "counters": {"rows_written": 8}}]});
        end.count(&report);
        assert_eq!(end.counters["out"]["rows_written"], 8);
    }

    #[test]
    fn problems_name_the_field() {
        let mut r = rule(AlertWhen::DurationOver);
        r.channels = vec!["Bad Name".into()];
        r.max_rejected = Some(1);
        let fields: Vec<String> = r.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["channels[0]", "max_rejected", "max_duration_ms"]);
        let mut sla = rule(AlertWhen::SlaMissed);
        assert_eq!(sla.problems()[0].0, "deadline");
        sla.deadline = Some("25:00".into());
        sla.timezone = Some("Mars/Olympus".into());
        sla.max_lag_ms = Some(5);
        let fields: Vec<String> = sla.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["max_lag_ms", "deadline", "timezone"]);
        sla.deadline = Some("06:30".into());
        sla.timezone = None;
        sla.max_lag_ms = None;
        assert!(sla.problems().is_empty());
        assert_eq!(sla.verdict(&ended(true)), Some(false), "a success passes");
        assert_eq!(sla.verdict(&ended(false)), None, "the clock fires it");
        assert!(sla.key().ends_with(":by=06:30"));
        let lag = rule(AlertWhen::ScheduleLag);
        assert_eq!(lag.problems()[0].0, "max_lag_ms");
        let mut counter = rule(AlertWhen::Counter);
        let fields: Vec<String> = counter.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["counter", "above"]);
        counter.counter = Some("rows".into());
        counter.below = Some(1);
        assert!(counter.problems().is_empty());
        counter.max_dead_letters = Some(1);
        assert_eq!(counter.problems()[0].0, "max_dead_letters");
        let dead = rule(AlertWhen::DeadLettersOver);
        assert_eq!(dead.problems()[0].0, "max_dead_letters");
    }
}
