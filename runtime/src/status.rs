//! The shared vocabulary of runs: run, attempt and cancel statuses and trigger kinds, each an
//! enum whose one spelling (lowercase text) is what the database stores, the API shows and the
//! CLI reads (floor 1: it imports nothing of the crate).
use std::fmt;
use std::str::FromStr;

/// A text that names no value of the enum it was read as; says which values there are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?}: expected {expected}")]
pub struct UnknownText {
    /// What was being read (`status`, `trigger`, ...).
    pub what: &'static str,
    /// The text given.
    pub text: String,
    /// The values there are, as a sentence (`a, b or c`).
    pub expected: String,
}

/// `a, b or c`.
fn one_of(texts: &[&str]) -> String {
    match texts.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// An enum whose values are spelled once, as the text they are stored and shown as: `as_str`,
/// `Display`, `FromStr` and serde all use that text.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown by the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownText;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownText {
                        what: $what,
                        text: s.to_string(),
                        expected: one_of(&[$($text),+]),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

text_enum! {
    /// Where a run is: `queued` -> `running` -> `succeeded`, `failed` or `cancelled`.
    RunStatus ("status") {
        /// Waiting in the queue (also between attempts).
        Queued = "queued",
        /// Held by a worker.
        Running = "running",
        /// Ended: every step went through.
        Succeeded = "succeeded",
        /// Ended: a step or the host failed it.
        Failed = "failed",
        /// Ended: cancelled.
        Cancelled = "cancelled",
    }
}

impl RunStatus {
    /// Whether the run has ended (it moves no more).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

text_enum! {
    /// How one attempt of a run went.
    AttemptStatus ("attempt status") {
        /// Its worker holds the run.
        Running = "running",
        /// The run succeeded.
        Succeeded = "succeeded",
        /// The run failed (no attempt left, or not retryable).
        Failed = "failed",
        /// It failed retryably; the run is queued again after a backoff.
        Retrying = "retrying",
        /// Its worker stopped heartbeating and another took the run over.
        Lost = "lost",
        /// A stopping worker handed the run back (not counted).
        Released = "released",
        /// The run was cancelled.
        Cancelled = "cancelled",
        /// The store failed transiently around it; the run is queued again (not counted).
        Interrupted = "interrupted",
    }
}

impl AttemptStatus {
    /// Whether an attempt ending this way is given back to the run's retry budget.
    pub const fn is_refunded(self) -> bool {
        matches!(self, AttemptStatus::Released | AttemptStatus::Interrupted)
    }
}

impl From<RunStatus> for AttemptStatus {
    /// The attempt's end when it ends its run with `status`.
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Queued => AttemptStatus::Retrying,
            RunStatus::Running => AttemptStatus::Running,
            RunStatus::Succeeded => AttemptStatus::Succeeded,
            RunStatus::Failed => AttemptStatus::Failed,
            RunStatus::Cancelled => AttemptStatus::Cancelled,
        }
    }
}

text_enum! {
    /// What a cancel request did, as its answer says.
    CancelStatus ("cancel status") {
        /// The run was queued and is cancelled now.
        Cancelled = "cancelled",
        /// The run is running; its worker stops it at its next heartbeat.
        Cancelling = "cancelling",
    }
}

text_enum! {
    /// What queued a run.
    Trigger ("trigger") {
        /// A request to the API (or the CLI).
        Api = "api",
        /// The pipeline's schedule, on time.
        Schedule = "schedule",
        /// The schedule, for a slot missed during a downtime.
        Catchup = "catchup",
        /// A replay of dead letters.
        Replay = "replay",
        /// A signed request to the pipeline's webhook trigger.
        Webhook = "webhook",
        /// A backfill: one of the schedule's slots in a range, run on request.
        Backfill = "backfill",
        /// Messages arrived on the subject of the pipeline's event trigger.
        Event = "event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_reads_back_from_its_text_and_serde_uses_the_same_text() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(*s));
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<RunStatus>(&json).unwrap(), *s);
        }
        for t in Trigger::ALL {
            assert_eq!(t.as_str().parse::<Trigger>(), Ok(*t));
        }
        for a in AttemptStatus::ALL {
            assert_eq!(a.as_str().parse::<AttemptStatus>(), Ok(*a));
        }
    }

    #[test]
    fn an_unknown_text_names_the_values_there_are() {
        let e = "done".parse::<RunStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "status \"done\": expected queued, running, succeeded, failed or cancelled"
        );
        assert!(serde_json::from_str::<Trigger>("\"cron\"").is_err());
    }
}
