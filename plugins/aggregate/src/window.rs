//! The aggregate functions and their accumulators, one per (window, group, aggregate), which
//! the step state keeps between runs.
use std::collections::BTreeSet;

use autoflow_json_path::KeyHasher;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Records (with a field: its non-null values).
    Count,
    /// Sum of the numbers.
    Sum,
    /// Smallest number.
    Min,
    /// Largest number.
    Max,
    /// Mean of the numbers.
    Avg,
    /// The first non-null value, in the order records came.
    First,
    /// The last non-null value.
    Last,
    /// How many distinct non-null values (compared by their JSON).
    Distinct,
}

impl Op {
    /// Its name in the config.
    pub fn name(self) -> &'static str {
        match self {
            Op::Count => "count",
            Op::Sum => "sum",
            Op::Min => "min",
            Op::Max => "max",
            Op::Avg => "avg",
            Op::First => "first",
            Op::Last => "last",
            Op::Distinct => "distinct",
        }
    }

    /// Whether `input` (the field's value; `None` without a field, `null` when missing) can be
    /// added; the error says why not.
    pub fn check(self, input: Option<&Value>) -> Result<(), String> {
        match (self, input) {
            (Op::Sum | Op::Min | Op::Max | Op::Avg, Some(v)) if !(v.is_number() || v.is_null()) => {
                Err(format!(
                    "{} takes numbers, got {}",
                    self.name(),
                    autoflow_json_path::kind(v)
                ))
            }
            _ => Ok(()),
        }
    }
}

/// What one aggregate has gathered for one group of one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Acc {
    /// Values counted (records for `count` without a field; numbers for the numeric ops).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub n: u64,
    /// Sum of the numbers.
    #[serde(default, skip_serializing_if = "is_zero_f")]
    pub sum: f64,
    /// Whether a number had a fraction (a sum of integers is written as an integer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fractional: bool,
    /// The value kept by min, max, first or last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<Value>,
    /// Hashes of the distinct values.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub distinct: BTreeSet<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_f(n: &f64) -> bool {
    *n == 0.0
}

impl Acc {
    /// Adds one record's input (checked by [`Op::check`]).
    pub fn add(&mut self, op: Op, input: Option<&Value>) {
        let v = match input {
            None => {
                self.n += 1; // count of records
                return;
            }
            Some(Value::Null) => return,
            Some(v) => v,
        };
        match op {
            Op::Count => self.n += 1,
            Op::Sum | Op::Avg => {
                let Some(x) = v.as_f64() else { return };
                self.n += 1;
                self.sum += x;
                self.fractional |= !(v.is_i64() || v.is_u64());
            }
            Op::Min | Op::Max => {
                let Some(x) = v.as_f64() else { return };
                let better = match self.kept.as_ref().and_then(Value::as_f64) {
                    None => true,
                    Some(k) if op == Op::Min => x < k,
                    Some(k) => x > k,
                };
                if better {
                    self.kept = Some(v.clone());
                }
            }
            Op::First => {
                if self.kept.is_none() {
                    self.kept = Some(v.clone());
                }
            }
            Op::Last => self.kept = Some(v.clone()),
            Op::Distinct => {
                let mut h = KeyHasher::new(0);
                h.write_json(v);
                self.distinct.insert(h.finish());
            }
        }
    }

    /// The aggregate's value: `null` for min, max, avg, first and last over no value.
    pub fn value(&self, op: Op) -> Value {
        match op {
            Op::Count => self.n.into(),
            Op::Sum if !self.fractional && self.sum.abs() < 9.0e15 => (self.sum as i64).into(),
            Op::Sum => number(self.sum),
            Op::Avg if self.n == 0 => Value::Null,
            Op::Avg => number(self.sum / self.n as f64),
            Op::Min | Op::Max | Op::First | Op::Last => self.kept.clone().unwrap_or(Value::Null),
            Op::Distinct => (self.distinct.len() as u64).into(),
        }
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
