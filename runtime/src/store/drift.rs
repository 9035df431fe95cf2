//! The SQLite and PostgreSQL migrations say the same schema: file for file, they differ only
//! in the dialect's words.

/// `(SQLite, PostgreSQL)` spellings of the same thing, as the migrations write them.
const DIALECT: &[(&str, &str)] = &[
    (
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    ),
    ("BLOB", "BYTEA"),
    ("(SQLite)", "(PostgreSQL)"),
];

#[test]
fn the_sqlite_and_postgres_migrations_differ_only_in_dialect() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |db: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(db))
            .unwrap_or_else(|e| panic!("migrations/{db}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    };
    let files = names("sqlite");
    assert_eq!(
        files,
        names("postgres"),
        "the same migration files for both databases"
    );
    assert!(!files.is_empty());
    for file in &files {
        let read = |db: &str| {
            std::fs::read_to_string(dir.join(db).join(file))
                .unwrap_or_else(|e| panic!("{db}/{file}: {e}"))
        };
        let mut sqlite = read("sqlite");
        for (lite, pg) in DIALECT {
            sqlite = sqlite.replace(lite, pg);
        }
        let postgres = read("postgres");
        for (n, (a, b)) in sqlite.lines().zip(postgres.lines()).enumerate() {
            assert_eq!(
                a,
                b,
                "{file} line {} differs beyond the dialect (SQLite, then PostgreSQL)",
                n + 1
            );
        }
        assert_eq!(
            sqlite.lines().count(),
            postgres.lines().count(),
            "{file}: line counts differ"
        );
    }
}
