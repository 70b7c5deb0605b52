//! The metadata catalog: what the service knows about its images, their variants and its API keys,
//! kept in SQL. Two backends with one contract and one set of migrations (`service/migrations/`):
//! PostgreSQL for deployments and a SQLite file for the embedded default. `tests/catalog_contract.rs`
//! runs the same suite against both.
//!
//! Vocabulary: an *image* is one distinct original, identified by a UUID v7 `id` (32 lowercase hex
//! digits, so ids sort by creation time) and deduplicated by the SHA-256 of its bytes; a *variant*
//! is one rendering of an image, keyed by `(image_id, variant_key)` and pointing at the blob that
//! holds it (`blob_key`, see [`crate::store::BlobKey`]); an *API key row* records the hash of a key
//! and whether it was revoked. Times are milliseconds since the Unix epoch (`*_ms`), stored as
//! BIGINT because the two backends share no timestamp type.
//!
//! Architecture invariant: only this module writes SQL. Every query goes through sqlx's `Any`
//! driver with `$1, $2, ...` placeholders and portable types (TEXT, BIGINT), so each statement
//! runs unchanged on both backends.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, ConnectOptions, Connection, Row};

/// How long a SQLite statement waits for another connection's write lock before failing. Writers
/// are serialized in SQLite (even in WAL mode), so concurrent uploads queue here rather than fail.
/// The same value appears in the `PRAGMA busy_timeout` of [`Catalog::connect`].
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for a pooled connection: bounded so that a dead database turns into
/// [`CatalogError::Unavailable`] (and a failing readiness probe) instead of a hung request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The deadline of one catalog operation, from taking a connection to the last row: a database
/// that accepts a query and then stalls fails the request with 503 instead of hanging it.
/// Migrations are exempt: they hold an advisory lock and may wait for another replica's.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The columns of `images` in the order [`image_from_row`] reads them, for `concat!`.
macro_rules! image_columns {
    () => {
        "id, sha256, format, width, height, bytes, created_at, frames, thumbhash, blurhash, dominant_color"
    };
}

/// The columns of `variants` in the order [`variant_from_row`] reads them, for `concat!`.
macro_rules! variant_columns {
    () => {
        "image_id, variant_key, spec, format, width, height, bytes, blob_key, created_at"
    };
}

/// The columns of `api_keys` in the order [`api_key_from_row`] reads them, for `concat!`.
macro_rules! api_key_columns {
    () => {
        "id, name, key_hash, created_at, revoked_at"
    };
}

/// The migrations, embedded: (version, description, SQL), as sqlx reads them from
/// `service/migrations/<version>_<description>.sql`. Listed here rather than by `sqlx::migrate!`,
/// whose proc-macro crate builds sqlx, SQLite and aws-lc a second time for the host, in every
/// profile; `embedded_migrations_are_the_directory` (tests.rs) checks the list against the files.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (20261123000000, "catalog", include_str!("../../migrations/20261123000000_catalog.sql")),
    (20261205000000, "image frames", include_str!("../../migrations/20261205000000_image_frames.sql")),
    (20261206000000, "placeholders", include_str!("../../migrations/20261206000000_placeholders.sql")),
    (20261206000001, "variant retention", include_str!("../../migrations/20261206000001_variant_retention.sql")),
];

fn migrator() -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                let no_tx = sql.starts_with("-- no-transaction");
                Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), no_tx)
            })
            .collect(),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Bad DATABASE_URL or similar.
    #[error("invalid catalog setting: {0}")]
    Config(String),
    /// Database unreachable or failed; may succeed later.
    #[error("{backend} catalog unavailable during {op}: {detail}")]
    Unavailable { backend: &'static str, op: &'static str, detail: String },
}

/// One original image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub id: String,
    pub sha256: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub created_at_ms: i64,
    /// Frames of an animation, 1 for a still; `None` for an image uploaded before they were
    /// recorded.
    pub frames: Option<u32>,
    /// Placeholders; `None` for an image uploaded before they were computed (until
    /// `pixelmill backfill`).
    pub placeholder: Option<Placeholders>,
}

/// An image's placeholders as the catalog keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// ThumbHash, standard base64.
    pub thumbhash: String,
    pub blurhash: String,
    /// `#rrggbb`; `None` when no pixel is opaque.
    pub dominant_color: Option<String>,
}

impl From<crate::engine::placeholder::Placeholder> for Placeholders {
    fn from(placeholder: crate::engine::placeholder::Placeholder) -> Placeholders {
        Placeholders {
            thumbhash: placeholder.thumbhash,
            blurhash: placeholder.blurhash,
            dominant_color: placeholder.dominant_color,
        }
    }
}

/// One stored rendering of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantRow {
    pub image_id: String,
    pub variant_key: String,
    pub spec: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub blob_key: String,
    pub created_at_ms: i64,
}

/// One API key, by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// What [`Catalog::insert_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The row was new and is now stored as given.
    Created(ImageRow),
    /// A row with the same sha256 was already there; this is that row, as stored.
    Existing(ImageRow),
}

/// Why an operation failed, before [`Catalog::observe`] labels it with the backend and operation.
enum Fault {
    Config(String),
    Failed(String),
}

impl From<sqlx::Error> for Fault {
    fn from(error: sqlx::Error) -> Fault {
        match error {
            sqlx::Error::Configuration(_) => Fault::Config(error.to_string()),
            error => Fault::Failed(error.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Fault {
    fn from(error: sqlx::migrate::MigrateError) -> Fault {
        Fault::Failed(error.to_string())
    }
}

/// Runs `work` within [`QUERY_TIMEOUT`], records its duration and turns its fault into a
/// [`CatalogError`].
async fn observe<T>(
    backend: &'static str,
    op: &'static str,
    work: impl Future<Output = Result<T, Fault>>,
) -> Result<T, CatalogError> {
    let deadline = async {
        match tokio::time::timeout(QUERY_TIMEOUT, work).await {
            Ok(result) => result,
            Err(_) => Err(Fault::Failed(format!("no answer within {QUERY_TIMEOUT:?}"))),
        }
    };
    observe_untimed(backend, op, deadline).await
}

/// [`observe`] without the deadline, for migrations, which may wait for another replica's.
async fn observe_untimed<T>(
    backend: &'static str,
    op: &'static str,
    work: impl Future<Output = Result<T, Fault>>,
) -> Result<T, CatalogError> {
    let started = Instant::now();
    let result = work.await;
    metrics::histogram!("pixelmill_catalog_duration_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    result.map_err(|fault| match fault {
        Fault::Config(detail) => CatalogError::Config(detail),
        Fault::Failed(detail) => CatalogError::Unavailable { backend, op, detail },
    })
}

/// Where [`Catalog::connect`] was told to keep the catalog.
enum Target<'a> {
    Postgres(&'a str),
    Sqlite(PathBuf),
}

impl<'a> Target<'a> {
    fn parse(database_url: &'a str, data_dir: &Path) -> Result<Target<'a>, CatalogError> {
        if database_url.is_empty() {
            return Ok(Target::Sqlite(data_dir.join("pixelmill.db")));
        }
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            return Ok(Target::Postgres(database_url));
        }
        if let Some(path) = database_url.strip_prefix("sqlite://") {
            // PATH is a plain file path, not sqlx's URL syntax: no percent-decoding and no query
            // parameters, whose options the catalog sets itself.
            if path.is_empty() || path.contains('?') {
                return Err(CatalogError::Config("database_url sqlite://PATH needs a file path (no ?options)".into()));
            }
            return Ok(Target::Sqlite(PathBuf::from(path)));
        }
        // Only the scheme is named: the rest may hold a password.
        let scheme = database_url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
        Err(CatalogError::Config(format!(
            "database_url scheme {scheme:?} is not supported; use postgres://..., sqlite://PATH, \
             or leave it empty for SQLite in the data directory"
        )))
    }
}

/// The catalog: a pool of connections to PostgreSQL or SQLite.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: AnyPool,
    backend: &'static str,
}

/// Now, as the catalog keeps times: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Catalog {
    /// `database_url`: `postgres://...` / `postgresql://...` → PostgreSQL; `sqlite://PATH` → SQLite at PATH
    /// (created if missing); empty → SQLite file `<data_dir>/pixelmill.db` (directory and file created if
    /// missing). Anything else → [`CatalogError::Config`] naming the scheme.
    ///
    /// SQLite runs in WAL mode (readers never wait for the writer), with foreign keys on and a busy
    /// timeout of 5 s.
    pub async fn connect(database_url: &str, data_dir: &Path) -> Result<Catalog, CatalogError> {
        // Idempotent: installs the compiled-in drivers on the first call only.
        sqlx::any::install_default_drivers();
        match Target::parse(database_url, data_dir)? {
            Target::Postgres(url) => {
                let pool = observe("postgres", "connect", async {
                    Ok(AnyPoolOptions::new().max_connections(10).acquire_timeout(ACQUIRE_TIMEOUT).connect(url).await?)
                })
                .await?;
                Ok(Catalog { pool, backend: "postgres" })
            }
            Target::Sqlite(path) => {
                let pool = observe("sqlite", "connect", connect_sqlite(&path)).await?;
                Ok(Catalog { pool, backend: "sqlite" })
            }
        }
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Runs the embedded migrations that have not run yet. Idempotent; on PostgreSQL, concurrent
    /// callers serialize on an advisory lock.
    pub async fn migrate(&self) -> Result<(), CatalogError> {
        observe_untimed(self.backend, "migrate", async { Ok(migrator().run(&self.pool).await?) }).await
    }

    /// Readiness: one round trip to the database.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        self.observe("ping", async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// Stores `image` unless an image with its sha256 exists. Of concurrent inserts of one sha256,
    /// exactly one is [`Inserted::Created`]; the others see that row as [`Inserted::Existing`].
    pub async fn insert_image(&self, image: &ImageRow) -> Result<Inserted, CatalogError> {
        self.observe("insert_image", async {
            // The conflicting row can be deleted before it is read back: then the insert is tried
            // again, and succeeds unless yet another upload of the same bytes wins.
            for _ in 0..3 {
                if self.try_insert_image(image).await? {
                    return Ok(Inserted::Created(image.clone()));
                }
                if let Some(existing) = self.fetch_image_by_sha256(&image.sha256).await? {
                    return Ok(Inserted::Existing(existing));
                }
            }
            Err(Fault::Failed(format!("images with sha256 {} kept being deleted during the insert", image.sha256)))
        })
        .await
    }

    pub async fn image(&self, id: &str) -> Result<Option<ImageRow>, CatalogError> {
        self.observe("image", async {
            let row = sqlx::query(concat!("SELECT ", image_columns!(), " FROM images WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(image_from_row).transpose()
        })
        .await
    }

    /// Up to `limit` images without placeholders, in id order after `after`: the work of
    /// `pixelmill backfill`, which resumes from where a run stopped by asking again (the rows it
    /// filled no longer match).
    pub async fn images_without_placeholder(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageRow>, CatalogError> {
        self.observe("images_without_placeholder", async {
            let rows = sqlx::query(concat!(
                "SELECT ",
                image_columns!(),
                " FROM images WHERE thumbhash IS NULL AND id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(image_from_row).collect()
        })
        .await
    }

    /// Sets an image's placeholders; whether the image exists.
    pub async fn set_placeholder(&self, id: &str, placeholder: &Placeholders) -> Result<bool, CatalogError> {
        self.observe("set_placeholder", async {
            let updated =
                sqlx::query("UPDATE images SET thumbhash = $1, blurhash = $2, dominant_color = $3 WHERE id = $4")
                    .bind(placeholder.thumbhash.as_str())
                    .bind(placeholder.blurhash.as_str())
                    .bind(placeholder.dominant_color.as_deref())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            Ok(updated.rows_affected() == 1)
        })
        .await
    }

    pub async fn image_by_sha256(&self, sha256: &str) -> Result<Option<ImageRow>, CatalogError> {
        self.observe("image_by_sha256", self.fetch_image_by_sha256(sha256)).await
    }

    /// Up to `limit` images, newest first; with `before`, only ids strictly less than it (the
    /// cursor is the last id of the previous page).
    pub async fn list_images(&self, limit: u32, before: Option<&str>) -> Result<Vec<ImageRow>, CatalogError> {
        self.observe("list_images", async {
            // Ids are fixed-length lowercase hex, for which every collation (PostgreSQL's default
            // included) agrees with byte order, which is creation order for UUID v7.
            let rows = match before {
                Some(cursor) => {
                    sqlx::query(concat!(
                        "SELECT ",
                        image_columns!(),
                        " FROM images WHERE id < $1 ORDER BY id DESC LIMIT $2"
                    ))
                    .bind(cursor)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                }
                None => {
                    sqlx::query(concat!("SELECT ", image_columns!(), " FROM images ORDER BY id DESC LIMIT $1"))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?
                }
            };
            rows.iter().map(image_from_row).collect()
        })
        .await
    }

    /// Deletes the image and its variant rows in one transaction; returns the deleted image, or
    /// `None` if there was no such image. The variants' blobs are found by their prefix, which
    /// also finds those a crash left without a row.
    pub async fn delete_image(&self, id: &str) -> Result<Option<ImageRow>, CatalogError> {
        self.observe("delete_image", async {
            let mut transaction = self.pool.begin().await?;
            // Writing first matters for SQLite: a transaction that reads before it writes fails with
            // SQLITE_BUSY (without waiting) if another connection wrote in between. Variants go
            // first and explicitly because SQLite's cascade is not relied upon; on PostgreSQL a variant
            // inserted between the two statements is removed by the cascade, and its blob is left
            // for garbage collection.
            sqlx::query("DELETE FROM variants WHERE image_id = $1").bind(id).execute(&mut *transaction).await?;
            let image_row = sqlx::query(concat!("DELETE FROM images WHERE id = $1 RETURNING ", image_columns!()))
                .bind(id)
                .fetch_optional(&mut *transaction)
                .await?;
            let Some(image_row) = image_row else {
                transaction.rollback().await?;
                return Ok(None);
            };
            let image = image_from_row(&image_row)?;
            transaction.commit().await?;
            Ok(Some(image))
        })
        .await
    }

    pub async fn variant(&self, image_id: &str, variant_key: &str) -> Result<Option<VariantRow>, CatalogError> {
        self.observe("variant", async {
            let row = sqlx::query(concat!(
                "SELECT ",
                variant_columns!(),
                " FROM variants WHERE image_id = $1 AND variant_key = $2"
            ))
            .bind(image_id)
            .bind(variant_key)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(variant_from_row).transpose()
        })
        .await
    }

    /// Stores `variant` unless its `(image_id, variant_key)` exists (then nothing changes).
    /// `Ok(false)` when the image no longer exists: nothing was stored, and the caller should drop
    /// the variant's blob.
    pub async fn insert_variant(&self, variant: &VariantRow) -> Result<bool, CatalogError> {
        self.observe("insert_variant", async {
            // The EXISTS guard keeps SQLite (whose foreign keys may be off) from storing an orphan;
            // the image id is bound twice so that placeholders stay in increasing order.
            // A new variant is served by the render that made it.
            let insert = sqlx::query(concat!(
                "INSERT INTO variants (",
                variant_columns!(),
                ", last_served_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                 WHERE EXISTS (SELECT 1 FROM images WHERE id = $11) ON CONFLICT (image_id, variant_key) DO NOTHING"
            ));
            let inserted = insert
                .bind(variant.image_id.as_str())
                .bind(variant.variant_key.as_str())
                .bind(variant.spec.as_str())
                .bind(variant.format.as_str())
                .bind(i64::from(variant.width))
                .bind(i64::from(variant.height))
                .bind(to_bigint(variant.bytes, "bytes")?)
                .bind(variant.blob_key.as_str())
                .bind(variant.created_at_ms)
                .bind(variant.created_at_ms)
                .bind(variant.image_id.as_str())
                .execute(&self.pool)
                .await;
            match inserted {
                Ok(done) if done.rows_affected() == 1 => return Ok(true),
                Ok(_) => {}
                // On PostgreSQL the image can be deleted after the guard saw it; the foreign key
                // then rejects the row, which is the same outcome as a failed guard.
                Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => return Ok(false),
                Err(error) => return Err(error.into()),
            }
            // Nothing inserted: either the variant was already there or the image is gone.
            let image = sqlx::query("SELECT 1 FROM images WHERE id = $1")
                .bind(variant.image_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
            Ok(image.is_some())
        })
        .await
    }

    /// Records that these variants were served at `now_ms`, where their record is older than
    /// `now_ms - granularity_ms` (a variant served all day is written once a day). Returns the
    /// rows written.
    pub async fn touch_variants(
        &self,
        served: &[(String, String)],
        now_ms: i64,
        granularity_ms: i64,
    ) -> Result<u64, CatalogError> {
        self.observe("touch_variants", async {
            let mut written = 0;
            for (image_id, variant_key) in served {
                let done = sqlx::query(
                    "UPDATE variants SET last_served_at = $1 \
                     WHERE image_id = $2 AND variant_key = $3 AND last_served_at < $4",
                )
                .bind(now_ms)
                .bind(image_id.as_str())
                .bind(variant_key.as_str())
                .bind(now_ms - granularity_ms)
                .execute(&self.pool)
                .await?;
                written += done.rows_affected();
            }
            Ok(written)
        })
        .await
    }

    /// Up to `limit` variants last served before `cutoff_ms`, in `(image_id, variant_key)`
    /// order after `after` (the last of the previous page).
    pub async fn variants_unused_since(
        &self,
        cutoff_ms: i64,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<VariantRow>, CatalogError> {
        self.observe("variants_unused_since", async {
            let (image_id, variant_key) = after.unwrap_or(("", ""));
            let rows = sqlx::query(concat!(
                "SELECT ",
                variant_columns!(),
                " FROM variants WHERE last_served_at < $1 AND (image_id > $2 OR (image_id = $3 AND variant_key > $4)) \
                 ORDER BY image_id, variant_key LIMIT $5"
            ))
            .bind(cutoff_ms)
            .bind(image_id)
            .bind(image_id)
            .bind(variant_key)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(variant_from_row).collect()
        })
        .await
    }

    /// Deletes one variant's row if it was still last served before `cutoff_ms` (one served
    /// meanwhile stays); returns the deleted row.
    pub async fn delete_variant_unused_since(
        &self,
        image_id: &str,
        variant_key: &str,
        cutoff_ms: i64,
    ) -> Result<Option<VariantRow>, CatalogError> {
        self.observe("delete_variant", async {
            let row = sqlx::query(concat!(
                "DELETE FROM variants WHERE image_id = $1 AND variant_key = $2 AND last_served_at < $3 RETURNING ",
                variant_columns!()
            ))
            .bind(image_id)
            .bind(variant_key)
            .bind(cutoff_ms)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(variant_from_row).transpose()
        })
        .await
    }

    /// The variants of an image past the `keep` most recently served (ties: the greater key
    /// stays): what a quota of `keep` evicts.
    pub async fn variants_over_quota(&self, image_id: &str, keep: u64) -> Result<Vec<VariantRow>, CatalogError> {
        self.observe("variants_over_quota", async {
            // SQLite needs a LIMIT before an OFFSET; no image has this many variants.
            let rows = sqlx::query(concat!(
                "SELECT ",
                variant_columns!(),
                " FROM variants WHERE image_id = $1 ORDER BY last_served_at DESC, variant_key DESC LIMIT $2 OFFSET $3"
            ))
            .bind(image_id)
            .bind(i64::MAX)
            .bind(to_bigint(keep, "keep")?)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(variant_from_row).collect()
        })
        .await
    }

    /// Deletes one variant's row; returns it, or `None` if it was gone already.
    pub async fn delete_variant(&self, image_id: &str, variant_key: &str) -> Result<Option<VariantRow>, CatalogError> {
        self.delete_variant_unused_since(image_id, variant_key, i64::MAX).await
    }

    /// Variants stored, and their bytes, in all.
    pub async fn variant_totals(&self) -> Result<(u64, u64), CatalogError> {
        self.observe("variant_totals", async {
            let row = sqlx::query(
                "SELECT COUNT(*) AS variants, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS bytes FROM variants",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok((from_bigint(&row, "variants")?, from_bigint(&row, "bytes")?))
        })
        .await
    }

    /// Whether any row references this blob key: `originals/<sha256>` an image with that sha256,
    /// `variants/...` a variant with that blob key. Other keys are never referenced.
    pub async fn blob_is_referenced(&self, blob_key: &str) -> Result<bool, CatalogError> {
        self.observe("blob_is_referenced", async {
            let row = if let Some(sha256) = blob_key.strip_prefix("originals/") {
                sqlx::query("SELECT 1 FROM images WHERE sha256 = $1").bind(sha256).fetch_optional(&self.pool).await?
            } else if blob_key.starts_with("variants/") {
                sqlx::query("SELECT 1 FROM variants WHERE blob_key = $1 LIMIT 1")
                    .bind(blob_key)
                    .fetch_optional(&self.pool)
                    .await?
            } else {
                None
            };
            Ok(row.is_some())
        })
        .await
    }

    pub async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<(), CatalogError> {
        self.observe("insert_api_key", async {
            sqlx::query(concat!("INSERT INTO api_keys (", api_key_columns!(), ") VALUES ($1, $2, $3, $4, $5)"))
                .bind(key.id.as_str())
                .bind(key.name.as_str())
                .bind(key.key_hash.as_str())
                .bind(key.created_at_ms)
                .bind(key.revoked_at_ms)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// The key with this hash, unless there is none or it was revoked.
    pub async fn active_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>, CatalogError> {
        self.observe("active_api_key_by_hash", async {
            let row = sqlx::query(concat!(
                "SELECT ",
                api_key_columns!(),
                " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
            ))
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(api_key_from_row).transpose()
        })
        .await
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>, CatalogError> {
        self.observe("list_api_keys", async {
            let rows = sqlx::query(concat!("SELECT ", api_key_columns!(), " FROM api_keys ORDER BY created_at, id"))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(api_key_from_row).collect()
        })
        .await
    }

    /// Marks the key revoked at `now_ms` unless it already was (the first revocation time stays).
    /// `Ok(true)` if a key with this id exists, revoked now or before; `Ok(false)` if none does.
    pub async fn revoke_api_key(&self, id: &str, now_ms: i64) -> Result<bool, CatalogError> {
        self.observe("revoke_api_key", async {
            let revoked = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
            if revoked.rows_affected() > 0 {
                return Ok(true);
            }
            let existing =
                sqlx::query("SELECT 1 FROM api_keys WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
            Ok(existing.is_some())
        })
        .await
    }

    /// Inserts `image` unless its sha256 is taken; whether it did.
    async fn try_insert_image(&self, image: &ImageRow) -> Result<bool, Fault> {
        // The conflict target is sha256 alone: a clash of ids would be a bug, and should fail
        // loudly rather than pass for a duplicate upload.
        let inserted = sqlx::query(concat!(
            "INSERT INTO images (",
            image_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (sha256) DO NOTHING"
        ))
        .bind(image.id.as_str())
        .bind(image.sha256.as_str())
        .bind(image.format.as_str())
        .bind(i64::from(image.width))
        .bind(i64::from(image.height))
        .bind(to_bigint(image.bytes, "bytes")?)
        .bind(image.created_at_ms)
        .bind(image.frames.map(i64::from))
        .bind(image.placeholder.as_ref().map(|p| p.thumbhash.clone()))
        .bind(image.placeholder.as_ref().map(|p| p.blurhash.clone()))
        .bind(image.placeholder.as_ref().and_then(|p| p.dominant_color.clone()))
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn fetch_image_by_sha256(&self, sha256: &str) -> Result<Option<ImageRow>, Fault> {
        let row = sqlx::query(concat!("SELECT ", image_columns!(), " FROM images WHERE sha256 = $1"))
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(image_from_row).transpose()
    }

    async fn observe<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = Result<T, Fault>>,
    ) -> Result<T, CatalogError> {
        observe(self.backend, op, work).await
    }
}

/// Opens (creating if missing) the SQLite catalog at `path`.
async fn connect_sqlite(path: &Path) -> Result<AnyPool, Fault> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|error| Fault::Failed(format!("creating directory {}: {error}", parent.display())))?;
    }
    // The `Any` driver only takes a URL, which cannot ask for WAL. WAL is a property of the file,
    // though, so one native connection sets it (creating the file) before the pool opens.
    let native = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    native.connect().await?.close().await?;
    // The pool's URL names the file absolutely: a relative path would be read as a URL host, and
    // `.`/`..` segments would be normalized away by URL parsing.
    let absolute = tokio::fs::canonicalize(path)
        .await
        .map_err(|error| Fault::Failed(format!("resolving {}: {error}", path.display())))?;
    // Writers serialize anyway; a few connections let readers run beside the writer.
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|connection, _| {
            Box::pin(async move {
                // sqlx's SQLite defaults match these today; stating them keeps them if they change.
                sqlx::raw_sql("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON").execute(connection).await?;
                Ok(())
            })
        })
        .connect(&sqlite_url(&absolute))
        .await?;
    Ok(pool)
}

/// `sqlite://<path>?mode=rw` with every byte of `path` but unreserved ones and `/` percent-encoded,
/// the form the SQLite driver decodes back into the path.
fn sqlite_url(path: &Path) -> String {
    let mut url = String::from("sqlite://");
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rw");
    url
}

/// A u64 as a BIGINT; values past `i64::MAX` are refused rather than wrapped.
fn to_bigint(value: u64, column: &str) -> Result<i64, Fault> {
    i64::try_from(value).map_err(|_| Fault::Failed(format!("{column} = {value} does not fit a BIGINT column")))
}

/// A BIGINT column as `T`; values out of range (never written by this module) are reported.
fn from_bigint<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, Fault> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| Fault::Failed(format!("column {column} holds {value}, out of range")))
}

/// A nullable BIGINT column that this module always fills, as `T`.
fn from_filled_bigint<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, Fault> {
    match row.try_get::<Option<i64>, _>(column)? {
        Some(value) => {
            T::try_from(value).map_err(|_| Fault::Failed(format!("column {column} holds {value}, out of range")))
        }
        None => Err(Fault::Failed(format!("column {column} is unexpectedly NULL"))),
    }
}

fn image_from_row(row: &AnyRow) -> Result<ImageRow, Fault> {
    Ok(ImageRow {
        id: row.try_get("id")?,
        sha256: row.try_get("sha256")?,
        format: row.try_get("format")?,
        width: from_bigint(row, "width")?,
        height: from_bigint(row, "height")?,
        bytes: from_bigint(row, "bytes")?,
        created_at_ms: row.try_get("created_at")?,
        frames: match row.try_get::<Option<i64>, _>("frames")? {
            Some(frames) => Some(
                u32::try_from(frames)
                    .map_err(|_| Fault::Failed(format!("column frames holds {frames}, which is not a frame count")))?,
            ),
            None => None,
        },
        placeholder: match (
            row.try_get::<Option<String>, _>("thumbhash")?,
            row.try_get::<Option<String>, _>("blurhash")?,
        ) {
            (Some(thumbhash), Some(blurhash)) => {
                Some(Placeholders { thumbhash, blurhash, dominant_color: row.try_get("dominant_color")? })
            }
            _ => None,
        },
    })
}

fn variant_from_row(row: &AnyRow) -> Result<VariantRow, Fault> {
    Ok(VariantRow {
        image_id: row.try_get("image_id")?,
        variant_key: row.try_get("variant_key")?,
        spec: row.try_get("spec")?,
        format: row.try_get("format")?,
        width: from_filled_bigint(row, "width")?,
        height: from_filled_bigint(row, "height")?,
        bytes: from_filled_bigint(row, "bytes")?,
        blob_key: row.try_get("blob_key")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

fn api_key_from_row(row: &AnyRow) -> Result<ApiKeyRow, Fault> {
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        created_at_ms: row.try_get("created_at")?,
        revoked_at_ms: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests;
