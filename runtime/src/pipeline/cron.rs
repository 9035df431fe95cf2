//! Cron schedules (six or seven fields, seconds first) read in a time zone, and the one decision
//! the ticker makes for a schedule: which slots since the last look to fire, given the
//! catch-up policy for slots missed while no server was running.
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::Catchup;

/// A slot younger than this when the ticker sees it is on time; older ones were missed (the
/// server was down, or stalled) and follow the catch-up policy.
pub const ON_TIME_MS: i64 = 1_000;

/// Parses a cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    cron::Schedule::from_str(expr.trim()).map_err(|e| {
        format!("invalid cron expression {expr:?} ({e}; six or seven fields, seconds first, as in \"0 */5 * * * *\")")
    })
}

/// Parses an IANA time zone name.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?} (an IANA name such as UTC or Europe/Paris)")
    })
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Cron {
    schedule: cron::Schedule,
    tz: Tz,
}

/// What to do for one schedule now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fires {
    /// Slots to fire on time, oldest first (Unix ms).
    pub on_time: Vec<i64>,
    /// Missed slots to fire as catch-up, oldest first (Unix ms).
    pub catch_up: Vec<i64>,
    /// Missed slots left out by the policy (at most the newest few are counted).
    pub dropped: usize,
}

/// `time` on `day` in `tz`, Unix ms: its first instant, or the first hour after it that exists
/// when a change of clocks skips it.
pub fn local_instant(tz: Tz, day: chrono::NaiveDate, time: chrono::NaiveTime) -> Option<i64> {
    let at = day.and_time(time);
    (0..4)
        .find_map(|h| {
            tz.from_local_datetime(&(at + chrono::Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
}

/// Unix ms `ms` as RFC 3339 in UTC to the second (`2026-01-01T05:00:00Z`).
pub fn rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

impl Cron {
    /// Parses `expr` read in time zone `tz`.
    pub fn new(expr: &str, tz: &str) -> Result<Self, String> {
        Ok(Self {
            schedule: parse_cron(expr)?,
            tz: parse_timezone(tz)?,
        })
    }

    /// The slots in `(after, until]`, newest first, at most `max`.
    pub fn slots_back(&self, after: i64, until: i64, max: usize) -> Vec<i64> {
        let Some(start) = self.at(until.saturating_add(1)) else {
            return Vec::new();
        };
        self.schedule
            .after(&start)
            .rev()
            .map(|t| t.timestamp_millis())
            .take_while(|&t| t > after)
            .filter(|&t| t <= until)
            .take(max)
            .collect()
    }

    /// The slots in `[from, to)`, oldest first, at most `max`.
    pub fn slots_between(&self, from: i64, to: i64, max: usize) -> Vec<i64> {
        let Some(start) = self.at(from.saturating_sub(1)) else {
            return Vec::new();
        };
        self.schedule
            .after(&start)
            .map(|t| t.timestamp_millis())
            .take_while(|&t| t < to)
            .take(max)
            .collect()
    }

    /// Midnight at the start of `day` in the schedule's zone (Unix ms), as [`local_instant`].
    pub fn midnight(&self, day: chrono::NaiveDate) -> Option<i64> {
        local_instant(self.tz, day, chrono::NaiveTime::MIN)
    }

    /// The first slot after `t` (Unix ms).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        self.schedule
            .after(&self.at(t)?)
            .next()
            .map(|t| t.timestamp_millis())
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        let utc = Utc.timestamp_millis_opt(ms).single()?;
        Some(utc.with_timezone(&self.tz))
    }

    /// Which slots in `(last, now]` to fire: those younger than [`ON_TIME_MS`] always; of the
    /// missed ones, none (`skip`), the newest (`once`) or the newest `max_catchup` (`all`).
    pub fn due(&self, last: i64, now: i64, catchup: Catchup, max_catchup: u32) -> Fires {
        let keep = match catchup {
            Catchup::Skip => 0,
            Catchup::Once => 1,
            Catchup::All => max_catchup.max(1) as usize,
        };
        // Enough to fill every bucket and to know whether some were left out.
        let slots = self.slots_back(last, now, keep + 64);
        let (mut on_time, missed): (Vec<i64>, Vec<i64>) =
            slots.into_iter().partition(|&t| now - t < ON_TIME_MS);
        let mut catch_up: Vec<i64> = missed.iter().copied().take(keep).collect();
        let dropped = missed.len() - catch_up.len();
        on_time.reverse();
        catch_up.reverse();
        Fires {
            on_time,
            catch_up,
            dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000; // a whole second, 2027-01-15T08:00:00Z

    fn every_second() -> Cron {
        Cron::new("* * * * * *", "UTC").unwrap()
    }

    #[test]
    fn slots_are_whole_seconds_in_the_half_open_window() {
        let c = every_second();
        assert_eq!(
            c.slots_back(T0, T0 + 3_000, 10),
            vec![T0 + 3_000, T0 + 2_000, T0 + 1_000]
        );
        assert_eq!(
            c.slots_back(T0, T0 + 2_999, 10),
            vec![T0 + 2_000, T0 + 1_000]
        );
        assert_eq!(
            c.slots_back(T0, T0 + 3_000, 2),
            vec![T0 + 3_000, T0 + 2_000]
        );
        assert_eq!(c.next_after(T0), Some(T0 + 1_000));
    }

    #[test]
    fn catch_up_policies() {
        let c = every_second();
        // Down from T0 to T0 + 10.2 s: slots T0+1 .. T0+10; T0+10 is on time.
        let now = T0 + 10_200;
        let skip = c.due(T0, now, Catchup::Skip, 3);
        assert_eq!(
            (skip.on_time.clone(), skip.catch_up.clone(), skip.dropped),
            (vec![T0 + 10_000], vec![], 9)
        );
        let once = c.due(T0, now, Catchup::Once, 3);
        assert_eq!((once.catch_up.clone(), once.dropped), (vec![T0 + 9_000], 8));
        let all = c.due(T0, now, Catchup::All, 3);
        assert_eq!(
            (all.catch_up.clone(), all.dropped),
            (vec![T0 + 7_000, T0 + 8_000, T0 + 9_000], 6)
        );
        assert_eq!(all.on_time, vec![T0 + 10_000]);
    }

    #[test]
    fn nothing_due_between_slots() {
        let c = Cron::new("0 */5 * * * *", "UTC").unwrap();
        assert_eq!(c.due(T0, T0 + 60_000, Catchup::All, 10), Fires::default());
        assert_eq!(
            c.due(T0, T0 + 300_000, Catchup::All, 10).on_time,
            vec![T0 + 300_000]
        );
    }

    #[test]
    fn time_zones_move_the_slots() {
        // 02:00 every day in Paris is 01:00 UTC in winter.
        let paris = Cron::new("0 0 2 * * *", "Europe/Paris").unwrap();
        let next = paris.next_after(T0).unwrap();
        assert_eq!(
            Utc.timestamp_millis_opt(next).unwrap().to_rfc3339(),
            "2027-01-16T01:00:00+00:00"
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_why() {
        assert!(
            parse_cron("every minute")
                .unwrap_err()
                .starts_with("invalid cron expression \"every minute\"")
        );
        assert!(parse_cron("* * * *").is_err());
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err(),
            "unknown time zone \"Mars/Olympus\" (an IANA name such as UTC or Europe/Paris)"
        );
    }
}
