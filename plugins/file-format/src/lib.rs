//! What the CSV and file plugins share: the file format, its default from the path's
//! extension, the checks of the CSV-only options, the CSV reader ([`CsvReader`]) and the
//! writer of rows as JSON objects ([`RowWriter`]). `file-source` and `csv-parse` read CSV
//! with them, so the CSV grammar lives here once.
use serde::Deserialize;

mod csv;
mod row;

pub use csv::{CsvError, CsvReader};
pub use row::{Cells, RowWriter, is_json_number, push_json_string};

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON Lines: one value per line.
    Jsonl,
    /// CSV (RFC 4180) with a header row.
    Csv,
}

/// The format a path implies: CSV for a `.csv` extension (any case), else JSON Lines.
pub fn format_of(path: &str) -> Format {
    match std::path::Path::new(path).extension() {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
        _ => Format::Jsonl,
    }
}

/// The format in force: `given`, else what the path implies.
pub fn resolve(given: Option<Format>, path: &str) -> Format {
    given.unwrap_or_else(|| format_of(path))
}

/// Checks a CSV delimiter: one ASCII character other than `"`, CR and LF.
pub fn delimiter(text: &str) -> Result<u8, String> {
    match text.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'"' | b'\r' | b'\n') => Ok(*b),
        _ => Err(format!(
            "delimiter must be one ASCII character other than a quote or line break, not {text:?}"
        )),
    }
}

/// Refuses CSV-only keys (`(name, given)`) for a file in JSON Lines; `verb` says what the
/// plugin does with the file ("read", "written").
pub fn refuse_csv_keys(
    format: Format,
    path: &str,
    verb: &str,
    keys: &[(&str, bool)],
) -> Result<(), String> {
    if format == Format::Jsonl
        && let Some((key, _)) = keys.iter().find(|(_, given)| *given)
    {
        return Err(format!(
            "`{key}` applies only to format csv, and {path} is {verb} as jsonl"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension_unless_given() {
        assert_eq!(resolve(None, "/out/a.CSV"), Format::Csv);
        assert_eq!(resolve(None, "/out/a.jsonl"), Format::Jsonl);
        assert_eq!(resolve(None, "/out/.csv"), Format::Jsonl);
        assert_eq!(resolve(Some(Format::Csv), "/out/a.txt"), Format::Csv);
    }

    #[test]
    fn delimiters_and_csv_only_keys_are_checked() {
        assert_eq!(delimiter(";"), Ok(b';'));
        assert!(delimiter("\"").is_err() && delimiter(",,").is_err());
        assert_eq!(
            refuse_csv_keys(
                Format::Jsonl,
                "/a.jsonl",
                "read",
                &[("delimiter", false), ("infer_types", true)]
            ),
            Err("`infer_types` applies only to format csv, and /a.jsonl is read as jsonl".into())
        );
        assert_eq!(
            refuse_csv_keys(Format::Csv, "/a.csv", "read", &[("delimiter", true)]),
            Ok(())
        );
    }

    /// Every record `reader` reads, each as its fields.
    fn records(reader: CsvReader<&[u8]>) -> Vec<Vec<String>> {
        let mut reader = reader;
        let mut out = Vec::new();
        while reader.read_record().unwrap().is_some() {
            out.push(reader.fields().map(String::from).collect());
        }
        out
    }

    #[test]
    fn blank_lines_are_skipped_unless_kept() {
        let text = &b"a\n\r\n\nb\n"[..];
        assert_eq!(records(CsvReader::new(text, b',', 0)), [["a"], ["b"]]);
        assert_eq!(
            records(CsvReader::new(text, b',', 0).keep_blank_lines()),
            [["a"], [""], [""], ["b"]]
        );
    }

    #[test]
    fn cells_are_typed_as_asked_after_the_given_members() {
        let header = ["n", "b", "e", "s"];
        let row = ["12", "true", "", "007"];
        let object = |cells| {
            let w = RowWriter::new(header.into_iter(), cells).unwrap();
            String::from_utf8(w.object_after(br#""k":1"#, row.into_iter())).unwrap()
        };
        assert_eq!(
            object(Cells::Strings),
            r#"{"k":1,"n":"12","b":"true","e":"","s":"007"}"#
        );
        assert_eq!(
            object(Cells::Typed),
            r#"{"k":1,"n":12,"b":true,"e":"","s":"007"}"#
        );
        assert_eq!(
            object(Cells::TypedOrNull),
            r#"{"k":1,"n":12,"b":true,"e":null,"s":"007"}"#
        );
        assert!(RowWriter::new(["a", "a"].into_iter(), Cells::Strings).is_err());
    }
}
