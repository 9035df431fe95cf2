//! The synthetic order record: its fields, and writing it as JSON text.
use crate::rng::SplitMix64;

/// Capacity to reserve for one record's text; records are about 300 bytes.
pub const CAPACITY: usize = 352;

/// The size every record is padded to, approximately, by its `note`.
const TARGET_LEN: usize = 300;

const FIRST: &[&str] = &[
    "alice", "bruno", "chloe", "dmitri", "emma", "farid", "greta", "hiro", "ines", "jonas",
    "kemal", "lena", "marco", "nora", "oscar", "priya", "quinn", "rosa", "sven", "tara",
];
const LAST: &[&str] = &[
    "meyer", "dubois", "rossi", "garcia", "smith", "tanaka", "novak", "jansen", "silva", "berg",
];
const DOMAINS: &[&str] = &["example.com", "example.org", "example.net", "mail.test"];
/// Countries with their currency.
const COUNTRIES: &[(&str, &str)] = &[
    ("DE", "EUR"),
    ("FR", "EUR"),
    ("NL", "EUR"),
    ("ES", "EUR"),
    ("IT", "EUR"),
    ("US", "USD"),
    ("GB", "GBP"),
    ("CH", "CHF"),
    ("JP", "JPY"),
    ("CA", "CAD"),
];
const WORDS: &[&str] = &[
    "gift", "wrap", "please", "leave", "at", "door", "fragile", "express", "thanks", "blue",
    "large", "second", "floor", "call", "before", "delivery", "no", "invoice", "reorder", "soon",
];

/// 2026-01-01T00:00:00Z in seconds since the Unix epoch.
const BASE_TIME: i64 = 1_767_225_600;

/// Appends the JSON text of order `id` under `seed` to `out`.
pub fn write_order(out: &mut String, seed: u64, id: u64) {
    let mut rng = SplitMix64::for_record(seed, id);
    let user = rng.below(100_000);
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let domain = rng.pick(DOMAINS);
    let status = match rng.below(100) {
        0..70 => "paid",
        70..85 => "pending",
        85..93 => "refunded",
        _ => "failed",
    };
    let cents = 100 + rng.below(99_900);
    let (country, currency) = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
    let items = 1 + rng.below(9);
    // About one order every 7 seconds from 2026-01-01, with jitter; wraps after ~2,000 years.
    let secs = BASE_TIME + ((id % 9_000_000_000) * 7 + rng.below(7)) as i64;
    let start = out.len();
    out.push_str(r#"{"id":"#);
    push_num(out, id, 1);
    out.push_str(r#","user":"user-"#);
    push_num(out, user, 5);
    out.push_str(r#"","email":""#);
    for part in [first, ".", last] {
        out.push_str(part);
    }
    push_num(out, user % 100, 1);
    out.push('@');
    out.push_str(domain);
    out.push_str(r#"","status":""#);
    out.push_str(status);
    out.push_str(r#"","amount":"#);
    push_num(out, cents / 100, 1);
    out.push('.');
    push_num(out, cents % 100, 2);
    for (key, value) in [
        (r#","currency":""#, currency),
        (r#"","country":""#, country),
    ] {
        out.push_str(key);
        out.push_str(value);
    }
    out.push_str(r#"","items":"#);
    push_num(out, items, 1);
    out.push_str(r#","created_at":""#);
    push_time(out, secs);
    out.push_str(r#"","note":""#);
    let mut first_word = true;
    while out.len() - start < TARGET_LEN - 2 {
        if !first_word {
            out.push(' ');
        }
        first_word = false;
        out.push_str(rng.pick(WORDS));
    }
    out.push_str("\"}");
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
fn push_num(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for d in &digits[i..] {
        out.push(char::from(*d));
    }
}

/// Appends `secs` (seconds since the Unix epoch, non-negative) as `YYYY-MM-DDTHH:MM:SSZ`.
fn push_time(out: &mut String, secs: i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u64);
    let (y, m, d) = civil_from_days(days);
    push_num(out, y.max(0) as u64, 4);
    for (sep, n) in [
        ('-', u64::from(m)),
        ('-', u64::from(d)),
        ('T', rem / 3600),
        (':', rem % 3600 / 60),
        (':', rem % 60),
    ] {
        out.push(sep);
        push_num(out, n, 2);
    }
    out.push('Z');
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
