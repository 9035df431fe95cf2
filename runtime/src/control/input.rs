//! A run's input: the records a trigger hands it (a webhook's body, or `input` in the API's
//! trigger), read as JSON, sealed with the master key for its tenant and pipeline, stored with
//! the run in the transaction that queues it, and fed to its `trigger-source` step.
use crate::record::Record;
use crate::secrets::MasterKey;
use crate::store::queue::SealedInput;

/// What the sealed input is, in its associated data.
const KIND: &str = "run-input";

/// The records of a trigger's body: one per element of a JSON array, the document itself for
/// any other JSON document, or one per non-empty line of JSON lines; none for an empty body.
/// Each record's value is its document written compactly. An error names the line and why.
pub fn records_of(body: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let whole = serde_json::from_str::<serde_json::Value>(text);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    match whole {
        Ok(serde_json::Value::Array(items)) => Ok(items),
        Ok(doc) => Ok(vec![doc]),
        // One document that does not parse: its own error, not a line's.
        Err(e) if lines.len() < 2 => Err(format!("the body is not JSON: {e}")),
        Err(_) => lines
            .into_iter()
            .map(|(n, line)| {
                serde_json::from_str(line)
                    .map_err(|e| format!("line {} of the JSON lines: {e}", n + 1))
            })
            .collect(),
    }
}

/// `records` sealed for `tenant`'s pipeline `pipeline`, one compact document per line.
pub fn seal(
    key: &MasterKey,
    tenant: &str,
    pipeline: &str,
    records: &[serde_json::Value],
) -> anyhow::Result<SealedInput> {
    let mut plain = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            plain.push(b'\n');
        }
        serde_json::to_writer(&mut plain, r)?;
    }
    Ok(SealedInput {
        records: records.len() as i64,
        bytes: plain.len() as i64,
        sealed: key.seal_bound(KIND, &[tenant, pipeline], &plain)?,
    })
}

/// The records [`seal`] sealed, in order; an error when they do not open for this tenant and
/// pipeline with this key.
pub fn open(
    key: &MasterKey,
    tenant: &str,
    pipeline: &str,
    sealed: &[u8],
) -> Result<Vec<Record>, String> {
    let plain = key
        .open_bound(KIND, &[tenant, pipeline], sealed)
        .ok_or("the run's input does not open with this server's master key")?;
    if plain.is_empty() {
        return Ok(Vec::new());
    }
    Ok(plain
        .split(|&b| b == b'\n')
        .map(|value| Record {
            value: value.to_vec(),
            ..Record::default()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_is_a_document_an_array_or_json_lines() {
        assert_eq!(records_of(br#"{"a": 1}"#).unwrap(), vec![json!({"a": 1})]);
        assert_eq!(
            records_of(b"[1, {\"b\": [2]}]").unwrap(),
            vec![json!(1), json!({"b": [2]})]
        );
        assert_eq!(
            records_of(b"{\"a\":1}\n\n{\"a\":2}\n").unwrap(),
            vec![json!({"a": 1}), json!({"a": 2})]
        );
        assert!(records_of(b"  \n").unwrap().is_empty());
    }

    #[test]
    fn a_bad_body_names_its_line() {
        let e = records_of(b"{\"a\":1}\n{\"a\":\n").unwrap_err();
        assert!(e.starts_with("line 2 of the JSON lines: "), "{e}");
        let e = records_of(b"{\"a\":").unwrap_err();
        assert!(e.starts_with("the body is not JSON: "), "{e}");
    }

    #[test]
    fn sealed_input_opens_only_for_its_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load_or_create(None, &dir.path().join("master.key")).unwrap();
        let records = vec![json!({"a": 1}), json!("two")];
        let s = seal(&key, "t1", "p", &records).unwrap();
        assert_eq!((s.records, s.bytes), (2, 13));
        let opened = open(&key, "t1", "p", &s.sealed).unwrap();
        let values: Vec<&[u8]> = opened.iter().map(|r| r.value.as_slice()).collect();
        assert_eq!(values, vec![&br#"{"a":1}"#[..], &br#""two""#[..]]);
        assert!(open(&key, "t1", "q", &s.sealed).is_err());
        assert!(open(&key, "t2", "p", &s.sealed).is_err());
        let none = seal(&key, "t1", "p", &[]).unwrap();
        assert!(open(&key, "t1", "p", &none.sealed).unwrap().is_empty());
    }
}
