//! Unit tests of what the contract suite (`tests/catalog_contract.rs`) cannot see: how SQLite
//! connections are set up, and how settings are read.

#![allow(clippy::unwrap_used)]

use sqlx::Row;

use super::*;

#[test]
fn settings_name_the_backend() {
    let data_dir = Path::new("/data");
    assert!(matches!(Target::parse("", data_dir), Ok(Target::Sqlite(p)) if p == Path::new("/data/pixelmill.db")));
    assert!(matches!(Target::parse("sqlite:///a/b.db", data_dir), Ok(Target::Sqlite(p)) if p == Path::new("/a/b.db")));
    assert!(
        matches!(Target::parse("sqlite://rel/b.db", data_dir), Ok(Target::Sqlite(p)) if p == Path::new("rel/b.db"))
    );
    assert!(matches!(Target::parse("postgres://u:p@h/db", data_dir), Ok(Target::Postgres(_))));
    assert!(matches!(Target::parse("postgresql://h/db", data_dir), Ok(Target::Postgres(_))));
    for bad in ["sqlite://", "sqlite:///a.db?mode=ro", "sqlite:a.db"] {
        assert!(matches!(Target::parse(bad, data_dir), Err(CatalogError::Config(_))), "{bad}");
    }
    // The error names the scheme but never echoes the URL, which may hold a password.
    let Err(CatalogError::Config(message)) = Target::parse("mysql://root:secret@h/db", data_dir) else {
        panic!("mysql accepted");
    };
    assert!(message.contains("\"mysql\"") && !message.contains("secret"), "{message}");
}

#[test]
fn sqlite_urls_encode_the_path() {
    assert_eq!(sqlite_url(Path::new("/a b/c?#%.db")), "sqlite:///a%20b/c%3F%23%25.db?mode=rw");
}

#[tokio::test]
async fn sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // An awkward path: a space, URL delimiters, something that looks percent-encoded but is not, and a
    // directory that does not exist yet.
    let path = dir.path().join("new dir #1").join("cat&log%20.db");
    let catalog = Catalog::connect(&format!("sqlite://{}", path.display()), dir.path()).await.unwrap();
    assert_eq!(catalog.backend(), "sqlite");
    assert!(path.is_file(), "the database file is where it was asked to be");
    catalog.migrate().await.unwrap();
    catalog.ping().await.unwrap();

    // Every pooled connection, not just the first, is set up the same way.
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(catalog.pool.acquire().await.unwrap());
    }
    for connection in &mut connections {
        let mode: String =
            sqlx::query("PRAGMA journal_mode").fetch_one(&mut **connection).await.unwrap().try_get(0).unwrap();
        assert_eq!(mode, "wal");
        let foreign_keys: i64 =
            sqlx::query("PRAGMA foreign_keys").fetch_one(&mut **connection).await.unwrap().try_get(0).unwrap();
        assert_eq!(foreign_keys, 1);
        let busy: i64 =
            sqlx::query("PRAGMA busy_timeout").fetch_one(&mut **connection).await.unwrap().try_get(0).unwrap();
        assert_eq!(busy, 5000);
    }
}

#[tokio::test]
async fn the_default_is_sqlite_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let catalog = Catalog::connect("", &data_dir).await.unwrap();
    assert_eq!(catalog.backend(), "sqlite");
    assert!(data_dir.join("pixelmill.db").is_file());
}

#[tokio::test]
async fn out_of_range_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::connect("", dir.path()).await.unwrap();
    catalog.migrate().await.unwrap();
    let image = ImageRow {
        id: "0".repeat(32),
        sha256: "a".repeat(64),
        format: "png".into(),
        width: 1,
        height: 1,
        bytes: u64::MAX,
        created_at_ms: 0,
        frames: Some(1),
        placeholder: None,
    };
    let error = catalog.insert_image(&image).await.unwrap_err();
    assert!(matches!(error, CatalogError::Unavailable { op: "insert_image", .. }), "{error}");

    // A row written by someone else with a negative width reads as an error too.
    sqlx::query("INSERT INTO images (id, sha256, format, width, height, bytes, created_at) VALUES ('1', 'b', 'png', -1, 1, 1, 0)")
        .execute(&catalog.pool)
        .await
        .unwrap();
    let error = catalog.image("1").await.unwrap_err();
    assert!(error.to_string().contains("column width holds -1"), "{error}");
}

/// The embedded list is what sqlx itself reads from `service/migrations/`: the same versions,
/// descriptions, kinds, checksums (so a database migrated by an earlier build still validates)
/// and transaction modes. A file added without its line here fails this.
#[tokio::test]
async fn embedded_migrations_are_the_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let read = sqlx::migrate::Migrator::new(dir).await.unwrap();
    let embedded = migrator();
    let key = |m: &sqlx::migrate::Migration| {
        (
            m.version,
            m.description.to_string(),
            m.migration_type,
            m.checksum.to_vec(),
            m.no_tx,
            m.sql.as_str().to_owned(),
        )
    };
    let read: Vec<_> = read.iter().map(key).collect();
    let embedded: Vec<_> = embedded.iter().map(key).collect();
    assert!(!read.is_empty());
    assert_eq!(embedded, read);
}
