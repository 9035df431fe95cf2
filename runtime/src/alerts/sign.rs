//! Webhook signatures: HMAC-SHA256 (RFC 2104) over `timestamp.body`, sent as
//! `Autoflow-Signature: t=<unix seconds>,v1=<hex>` (as Stripe signs its webhooks). A receiver
//! recomputes `hex(hmac_sha256(secret, "<t>.<raw body>"))`, compares it in constant time with
//! `v1`, and refuses a `t` too far from its clock (replays).
use sha2::{Digest, Sha256};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Autoflow-Signature";

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(hmac_sha256(secret, &signed))
    )
}

/// How far a signature's timestamp may be from now, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Checks `header` (`t=..,v1=..`, several `v1` allowed) against `body` under `secret` at
/// `now` (Unix seconds): in constant time, and refusing a timestamp more than
/// [`TOLERANCE_SECS`] away. The reason when it does not verify.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), String> {
    let mut t = None;
    let mut given = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => given.push(v.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or("the signature has no timestamp (t=)")?;
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(format!(
            "the signature's timestamp is more than {TOLERANCE_SECS} s from now"
        ));
    }
    let expected = signature(secret, t, body);
    let expected = expected.rsplit_once("v1=").map_or("", |(_, v)| v);
    let matches = given.iter().any(|g| {
        use subtle::ConstantTimeEq;
        g.len() == expected.len() && bool::from(g.as_bytes().ct_eq(expected.as_bytes()))
    });
    if matches {
        Ok(())
    } else {
        Err("the signature does not match".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 and test case 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(signature(b"k", 17, b"{}").starts_with("t=17,v1="));
        let header = signature(b"k", 1000, b"{}");
        assert_eq!(verify(b"k", &header, b"{}", 1100), Ok(()));
        assert!(verify(b"other", &header, b"{}", 1100).is_err());
        assert!(verify(b"k", &header, b"{ }", 1100).is_err());
        assert!(verify(b"k", &header, b"{}", 2000).is_err(), "too old");
        assert!(verify(b"k", "v1=00", b"{}", 1000).is_err());
    }
}
