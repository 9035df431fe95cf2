//! Failed authentications per source address (or, for sign-ins, per user name), in memory: at most [`MAX_FAILURES`] per
//! [`WINDOW`] (a fixed window that starts at a source's first failure). Once a source has used
//! them up, every request from it is refused (429, `Retry-After`) without a token check until
//! its window ends, so guessing cannot go on and costs no database work, even with a valid
//! token among the guesses. Successful requests are not counted and leave no state.
//!
//! A source is an IPv4 address, or the /64 network of an IPv6 address (one host holds a whole
//! /64). At most [`MAX_SOURCES`] sources are tracked; past that the one whose window started
//! first is forgotten.
//!
//! The limiter also keeps what the audit log needs to write one `auth.failed` entry per source
//! and window: the row, once inserted, and the count and reasons so far ([`AuditWrite`]).
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Failed authentications a source may have in a window before it is refused.
pub const MAX_FAILURES: u32 = 10;
/// The length of a source's window, from its first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources tracked at once.
pub const MAX_SOURCES: usize = 10_000;

/// Where requests come from, as the limiter counts them: an address, or (for sign-in
/// attempts) the user name tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address, or an IPv6 /64.
    Address(IpAddr),
    /// A user name: the first 16 bytes of the sha256 of its lowercase text.
    User([u8; 16]),
}

impl Source {
    /// The source of a request from `ip`: the address itself for IPv4 (also when mapped into
    /// IPv6), its /64 network for IPv6.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(_) => Source::Address(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::Address(IpAddr::V4(v4)),
                None => Source::Address(IpAddr::V6(Ipv6Addr::from(
                    v6.to_bits() & !((1u128 << 64) - 1),
                ))),
            },
        }
    }

    /// The source of sign-in attempts as user `name` (whatever their address).
    pub fn user(name: &str) -> Source {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(name.to_lowercase().as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Source::User(key)
    }
}

/// What to write to the audit log after a failure ([`Attempt::failed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditWrite {
    /// The window's first failure: insert its entry, then report its id with
    /// [`FailureLimiter::inserted`].
    Insert {
        /// The source.
        source: Source,
        /// Which window of the source.
        window: u64,
        /// The remote address of this failure.
        remote: String,
        /// The reasons so far.
        detail: String,
    },
    /// Set the count and reasons of the window's entry.
    Update {
        /// The entry.
        id: i64,
        /// Failures in the window so far.
        count: i64,
        /// Their reasons, each once.
        detail: String,
    },
    /// Nothing now: the entry is being inserted, and its inserter writes the count after.
    Nothing,
}

/// The state of a source's audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    None,
    Inserting,
    Written(i64),
}

#[derive(Debug)]
struct Entry {
    window: u64,
    started: Instant,
    failures: u32,
    /// Requests admitted while the window had failures and not settled yet: they count towards
    /// the limit, so that parallel guesses cannot overshoot it.
    pending: u32,
    row: Row,
    reasons: Vec<&'static str>,
}

impl Entry {
    fn detail(&self) -> String {
        self.reasons.join(", ")
    }
}

#[derive(Debug, Default)]
struct Inner {
    sources: HashMap<Source, Entry>,
    /// The sources by the start of their window: the first is evicted first.
    by_start: BTreeMap<(Instant, u64), Source>,
    windows: u64,
}

/// Counts failed authentications per source; cheap to share (one lock, held for a lookup).
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    max_sources: usize,
    inner: Mutex<Inner>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW, MAX_SOURCES)
    }
}

/// A request admitted from a source, whose token is being checked. Dropping it (the token was
/// good, or the request went away) counts nothing.
#[derive(Debug)]
pub struct Attempt<'a> {
    limiter: &'a FailureLimiter,
    source: Source,
    /// The window whose `pending` this request was counted in.
    pending_in: Option<u64>,
}

impl FailureLimiter {
    /// A limiter allowing `max_failures` per `window`, tracking at most `max_sources`.
    pub fn new(max_failures: u32, window: Duration, max_sources: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            max_sources: max_sources.max(1),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a request from `ip`, or refuses it with the time left in the source's window.
    pub fn admit(&self, ip: IpAddr) -> Result<Attempt<'_>, Duration> {
        self.admit_at(Source::of(ip), Instant::now())
    }

    /// Admits a request from `source`, or refuses it with the time left in its window.
    pub fn admit_source(&self, source: Source) -> Result<Attempt<'_>, Duration> {
        self.admit_at(source, Instant::now())
    }

    fn admit_at(&self, source: Source, now: Instant) -> Result<Attempt<'_>, Duration> {
        let mut inner = self.lock();
        let mut pending_in = None;
        if let Some(e) = inner.sources.get_mut(&source) {
            let ends = e.started + self.window;
            if now < ends && e.failures > 0 {
                if e.failures.saturating_add(e.pending) >= self.max_failures {
                    return Err(ends - now);
                }
                e.pending += 1;
                pending_in = Some(e.window);
            }
        }
        Ok(Attempt {
            limiter: self,
            source,
            pending_in,
        })
    }

    /// The entry of `source` in its current window, a new window if the last one ended.
    fn current<'i>(&self, inner: &'i mut Inner, source: Source, now: Instant) -> &'i mut Entry {
        let ended = inner
            .sources
            .get(&source)
            .is_none_or(|e| now >= e.started + self.window);
        if ended {
            if let Some(old) = inner.sources.remove(&source) {
                inner.by_start.remove(&(old.started, old.window));
            }
            while inner.sources.len() >= self.max_sources {
                let Some((_, oldest)) = inner.by_start.pop_first() else {
                    break;
                };
                inner.sources.remove(&oldest);
            }
            inner.windows += 1;
            inner.by_start.insert((now, inner.windows), source);
        }
        // Found, unless it ended and was removed above: then the new window's.
        let window = inner.windows;
        inner.sources.entry(source).or_insert_with(|| Entry {
            window,
            started: now,
            failures: 0,
            pending: 0,
            row: Row::None,
            reasons: Vec::new(),
        })
    }

    fn failed_at(
        &self,
        attempt: &mut Attempt<'_>,
        reason: &'static str,
        remote: String,
        now: Instant,
    ) -> AuditWrite {
        let mut inner = self.lock();
        let pending_in = attempt.pending_in.take();
        let max = self.max_failures;
        let e = self.current(&mut inner, attempt.source, now);
        if pending_in == Some(e.window) {
            e.pending = e.pending.saturating_sub(1);
        }
        e.failures = e.failures.saturating_add(1);
        if !e.reasons.contains(&reason) {
            e.reasons.push(reason);
        }
        if e.failures == max {
            tracing::warn!(
                "{remote}: {max} failed authentications; requests from there are refused until the window ends"
            );
        }
        match e.row {
            Row::None => {
                e.row = Row::Inserting;
                AuditWrite::Insert {
                    source: attempt.source,
                    window: e.window,
                    remote,
                    detail: e.detail(),
                }
            }
            Row::Inserting => AuditWrite::Nothing,
            Row::Written(id) => AuditWrite::Update {
                id,
                count: i64::from(e.failures),
                detail: e.detail(),
            },
        }
    }

    /// The entry of `window` of `source` was inserted as row `id` (or, with `None`, could not
    /// be); what to write next: the failures counted meanwhile, if any.
    pub fn inserted(&self, source: Source, window: u64, id: Option<i64>) -> Option<AuditWrite> {
        let mut inner = self.lock();
        let e = inner
            .sources
            .get_mut(&source)
            .filter(|e| e.window == window)?;
        let Some(id) = id else {
            e.row = Row::None;
            return None;
        };
        e.row = Row::Written(id);
        (e.failures > 1).then(|| AuditWrite::Update {
            id,
            count: i64::from(e.failures),
            detail: e.detail(),
        })
    }

    fn settle(&self, source: Source, window: u64) {
        let mut inner = self.lock();
        if let Some(e) = inner
            .sources
            .get_mut(&source)
            .filter(|e| e.window == window)
        {
            e.pending = e.pending.saturating_sub(1);
        }
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().sources.len()
    }
}

impl Attempt<'_> {
    /// The token was refused for `reason`: counts the failure; what to write to the audit log.
    pub fn failed(mut self, reason: &'static str, remote: String) -> AuditWrite {
        self.limiter
            .failed_at(&mut self, reason, remote, Instant::now())
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(window) = self.pending_in.take() {
            self.limiter.settle(self.source, window);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Source {
        Source::of(text.parse().unwrap())
    }

    fn fail(l: &FailureLimiter, source: Source, now: Instant) -> Result<AuditWrite, Duration> {
        let mut attempt = l.admit_at(source, now)?;
        Ok(l.failed_at(&mut attempt, "unknown token", "peer".into(), now))
    }

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let l = FailureLimiter::new(3, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for i in 0..3 {
            assert!(
                fail(&l, a, t0 + Duration::from_secs(i)).is_ok(),
                "failure {i} is let through"
            );
        }
        let wait = fail(&l, a, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Refused even with a good token: the request is not admitted at all.
        assert!(l.admit_at(a, t0 + Duration::from_secs(59)).is_err());
        // Another address is not affected, and good requests leave no state.
        drop(l.admit_at(ip("10.0.0.2"), t0).unwrap());
        assert_eq!(l.tracked(), 1);
        // A new window.
        assert!(fail(&l, a, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn parallel_guesses_do_not_overshoot() {
        let l = FailureLimiter::new(3, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        fail(&l, a, t0).unwrap();
        let b = l.admit_at(a, t0).unwrap();
        let c = l.admit_at(a, t0).unwrap();
        assert!(
            l.admit_at(a, t0).is_err(),
            "two failures may still come from the two in flight"
        );
        drop(b); // a good token
        let mut c = c;
        l.failed_at(&mut c, "unknown token", "peer".into(), t0);
        drop(c);
        assert!(l.admit_at(a, t0).is_ok());
    }

    #[test]
    fn one_audit_entry_per_source_and_window() {
        let l = FailureLimiter::new(10, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        let AuditWrite::Insert {
            source,
            window,
            detail,
            ..
        } = fail(&l, a, t0).unwrap()
        else {
            panic!("first: insert")
        };
        assert_eq!(detail, "unknown token");
        // Failures while the insert is under way are written by the inserter afterwards.
        assert_eq!(fail(&l, a, t0).unwrap(), AuditWrite::Nothing);
        let mut attempt = l.admit_at(a, t0).unwrap();
        assert_eq!(
            l.failed_at(&mut attempt, "missing bearer token", "peer".into(), t0),
            AuditWrite::Nothing
        );
        assert_eq!(
            l.inserted(source, window, Some(7)),
            Some(AuditWrite::Update {
                id: 7,
                count: 3,
                detail: "unknown token, missing bearer token".into()
            })
        );
        assert_eq!(
            fail(&l, a, t0).unwrap(),
            AuditWrite::Update {
                id: 7,
                count: 4,
                detail: "unknown token, missing bearer token".into()
            }
        );
        // The next window has its own entry.
        assert!(matches!(
            fail(&l, a, t0 + Duration::from_secs(61)).unwrap(),
            AuditWrite::Insert { .. }
        ));
        // A failed insert is retried by the next failure.
        let b = ip("10.0.0.2");
        let AuditWrite::Insert { source, window, .. } = fail(&l, b, t0).unwrap() else {
            panic!("insert")
        };
        assert_eq!(l.inserted(source, window, None), None);
        assert!(matches!(
            fail(&l, b, t0).unwrap(),
            AuditWrite::Insert { .. }
        ));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_go_first() {
        let l = FailureLimiter::new(1, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for (i, addr) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .into_iter()
            .enumerate()
        {
            fail(&l, ip(addr), t0 + Duration::from_millis(i as u64)).unwrap();
        }
        assert_eq!(l.tracked(), 3);
        assert!(
            l.admit_at(ip("10.0.0.1"), t0).is_ok(),
            "the oldest was forgotten"
        );
        assert!(l.admit_at(ip("10.0.0.4"), t0).is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:bbbb::2"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
    }

    #[test]
    fn user_names_count_apart_from_addresses_and_case() {
        assert_eq!(Source::user("Alice"), Source::user("alice"));
        assert_ne!(Source::user("alice"), Source::user("bob"));
        let l = FailureLimiter::new(1, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        fail(&l, Source::user("alice"), t0).unwrap();
        assert!(l.admit_at(Source::user("alice"), t0).is_err());
        assert!(l.admit_at(Source::user("bob"), t0).is_ok());
        assert!(l.admit_at(ip("10.0.0.1"), t0).is_ok());
    }
}
