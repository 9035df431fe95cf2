//! The connection-URL check: any URL is accepted or refused without a panic; what is accepted
//! names only network servers (a host of name or address characters, a port that is not 0)
//! and only the query parameters its scheme allows; and the values of its secrets, whatever
//! they hold, cannot add a server or a query parameter, nor turn one into another (the
//! input's first line is the URL, the rest the value of every secret it names).
#![no_main]

use std::collections::BTreeMap;

use autoflow::pipeline::connection::target::{Target, allowed};
use autoflow::pipeline::connection::{ConnectionUrl, expand};
use libfuzzer_sys::fuzz_target;

/// Checks what an accepted target may hold.
fn check(t: &Target) {
    for s in &t.servers {
        assert!(!s.host.is_empty(), "{t:?}");
        assert!(
            s.host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._:".contains(&b)),
            "{t:?}"
        );
        assert_ne!(s.port, 0, "{t:?}");
    }
    let allowed = allowed(t.kind);
    for (key, _) in &t.params {
        let ok = allowed.contains(&key.as_str())
            || (allowed.contains(&"options[NAME]")
                && key.starts_with("options[")
                && key.ends_with(']'));
        assert!(ok, "parameter {key:?} kept: {t:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (url, value) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(parsed) = ConnectionUrl::parse(url) else {
        let _ = ConnectionUrl::read(url);
        return;
    };
    let with = |value: &str| -> BTreeMap<String, String> {
        parsed
            .secrets
            .iter()
            .map(|name| (name.clone(), value.to_string()))
            .collect()
    };
    // Each secret as "1" is the shape the check accepted.
    let shape = expand(url, &with("1")).expect("every secret is given");
    let accepted = Target::parse(parsed.kind, &shape).expect("parse accepted the shape");
    check(&accepted);
    let real = expand(url, &with(value)).expect("every secret is given");
    if let Ok(t) = Target::parse(parsed.kind, &real) {
        check(&t);
        assert_eq!(
            t.servers.len(),
            accepted.servers.len(),
            "{url:?} with {value:?}"
        );
        // A placeholder may stand in a PostgreSQL option's name (`options[${secrets.n}]`):
        // its value changes the name, not the parameter.
        let keys = |t: &Target| {
            t.params
                .iter()
                .map(
                    |(k, _)| match k.starts_with("options[") && k.ends_with(']') {
                        true => "options[NAME]".to_string(),
                        false => k.clone(),
                    },
                )
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&t), keys(&accepted), "{url:?} with {value:?}");
    }
});
