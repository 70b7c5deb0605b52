//! The catalog contract, run against every backend: SQLite in a temporary directory, and the
//! PostgreSQL server that PIXELMILL_TEST_DATABASE_URL names (`bash .ci/services.sh start` starts
//! one and exports it; `cargo xtask ci` does both).
//! Each PostgreSQL run creates a database of its own and drops it afterwards.

// Test helpers shared by the #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;

use pixelmill::catalog::{ApiKeyRow, Catalog, CatalogError, ImageRow, Inserted, Placeholders, VariantRow};
use pixelmill_tests::services::Database;
use uuid::Uuid;

fn new_id() -> String {
    Uuid::now_v7().simple().to_string()
}

/// A distinct, valid-looking SHA-256 hex digest per `seed`.
fn sha256(seed: &str) -> String {
    format!("{seed:0>64}")
}

fn image(id: &str, sha256: &str) -> ImageRow {
    ImageRow {
        id: id.to_owned(),
        sha256: sha256.to_owned(),
        format: "png".to_owned(),
        width: 640,
        height: u32::MAX,
        bytes: 123_456_789_012,
        created_at_ms: 1_700_000_000_000,
        frames: Some(240),
        placeholder: Some(Placeholders {
            thumbhash: "1QcSHQRnh493V4dIh4eXh1h4kJUI".to_owned(),
            blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj".to_owned(),
            dominant_color: Some("#1e78c8".to_owned()),
        }),
    }
}

fn variant(image_id: &str, variant_key: &str) -> VariantRow {
    VariantRow {
        image_id: image_id.to_owned(),
        variant_key: variant_key.to_owned(),
        spec: format!("w=100,key={variant_key}"),
        format: "webp".to_owned(),
        width: 100,
        height: 75,
        bytes: 4_321,
        blob_key: format!("variants/{image_id}/{variant_key}.webp"),
        created_at_ms: 1_700_000_000_001,
    }
}

fn api_key(id: &str, created_at_ms: i64) -> ApiKeyRow {
    ApiKeyRow {
        id: id.to_owned(),
        name: format!("key {id}"),
        key_hash: format!("hash-of-{id}"),
        created_at_ms,
        revoked_at_ms: None,
    }
}

async fn contract(catalog: Catalog) {
    let backend = catalog.backend();
    catalog.migrate().await.unwrap_or_else(|e| panic!("{backend}: {e}"));
    catalog.migrate().await.unwrap_or_else(|e| panic!("{backend}: second migrate: {e}"));
    catalog.ping().await.unwrap();

    images(&catalog).await;
    concurrent_inserts(&catalog).await;
    listing(&catalog).await;
    variants_and_deletion(&catalog).await;
    api_keys(&catalog).await;
    placeholders(&catalog).await;
    retention(&catalog).await;
}

/// When variants were last served: written at insert, touched at most once a granule, listed
/// and removed by age, and a variant served meanwhile is not removed.
async fn retention(catalog: &Catalog) {
    let backend = catalog.backend();
    const DAY: i64 = 24 * 3600 * 1000;
    let owner = image(&new_id(), &sha256("retention"));
    catalog.insert_image(&owner).await.unwrap();
    let made = 1_700_000_000_000;
    for key in ["r1", "r2", "r3"] {
        let row = VariantRow { created_at_ms: made, ..variant(&owner.id, key) };
        assert!(catalog.insert_variant(&row).await.unwrap(), "{backend}");
    }
    let ours = |rows: Vec<VariantRow>| {
        rows.into_iter().filter(|row| row.image_id == owner.id).map(|row| row.variant_key).collect::<Vec<_>>()
    };
    // Last served when made: none is older than that, all are older than a day later.
    assert!(ours(catalog.variants_unused_since(made, None, 100).await.unwrap()).is_empty(), "{backend}");
    assert_eq!(
        ours(catalog.variants_unused_since(made + DAY, None, 100).await.unwrap()),
        ["r1", "r2", "r3"],
        "{backend}"
    );
    // Served ten days later: written once, not again within the day.
    let served = [(owner.id.clone(), "r1".to_owned())];
    let later = made + 10 * DAY;
    assert_eq!(catalog.touch_variants(&served, later, DAY).await.unwrap(), 1, "{backend}");
    assert_eq!(catalog.touch_variants(&served, later + DAY / 2, DAY).await.unwrap(), 0, "{backend}");
    let cutoff = made + 5 * DAY;
    assert_eq!(ours(catalog.variants_unused_since(cutoff, None, 100).await.unwrap()), ["r2", "r3"], "{backend}");
    // Paged by key after the last of a page.
    let page = catalog.variants_unused_since(cutoff, Some((&owner.id, "r2")), 100).await.unwrap();
    assert_eq!(ours(page), ["r3"], "{backend}");
    // Removed only while still unused.
    let gone = catalog.delete_variant_unused_since(&owner.id, "r2", cutoff).await.unwrap();
    assert_eq!(gone.map(|row| row.variant_key).as_deref(), Some("r2"), "{backend}");
    assert_eq!(catalog.delete_variant_unused_since(&owner.id, "r1", cutoff).await.unwrap(), None, "{backend}");
    assert!(catalog.variant(&owner.id, "r1").await.unwrap().is_some(), "{backend}");
    assert!(catalog.variant(&owner.id, "r2").await.unwrap().is_none(), "{backend}");
    // The quota's order: most recently served first, then the greater key.
    let kept = |rows: Vec<VariantRow>| rows.into_iter().map(|row| row.variant_key).collect::<Vec<_>>();
    assert_eq!(kept(catalog.variants_over_quota(&owner.id, 1).await.unwrap()), ["r3"], "{backend}");
    assert_eq!(kept(catalog.variants_over_quota(&owner.id, 0).await.unwrap()), ["r1", "r3"], "{backend}");
    assert!(catalog.variants_over_quota(&owner.id, 2).await.unwrap().is_empty(), "{backend}");
    let (count, bytes) = catalog.variant_totals().await.unwrap();
    assert!(count >= 2 && bytes >= 2 * 4_321, "{backend}: {count} variants, {bytes} bytes");
    assert_eq!(
        catalog.delete_variant(&owner.id, "r3").await.unwrap().map(|row| row.variant_key).as_deref(),
        Some("r3")
    );
    assert_eq!(catalog.delete_variant(&owner.id, "r3").await.unwrap(), None, "{backend}");
    assert_eq!(catalog.variant_totals().await.unwrap(), (count - 1, bytes - 4_321), "{backend}");
    catalog.delete_image(&owner.id).await.unwrap();
}

/// Images without placeholders are found in id order, page by page, until filled.
async fn placeholders(catalog: &Catalog) {
    let backend = catalog.backend();
    let mut missing: Vec<ImageRow> =
        (0..5).map(|n| ImageRow { placeholder: None, ..image(&new_id(), &sha256(&format!("old{n}"))) }).collect();
    for row in &missing {
        catalog.insert_image(row).await.unwrap();
    }
    // A placeholder without a dominant colour (no opaque pixel) round-trips as such.
    let clear = Placeholders { dominant_color: None, ..image("", "").placeholder.unwrap() };
    let transparent = ImageRow { placeholder: Some(clear.clone()), ..image(&new_id(), &sha256("clear")) };
    catalog.insert_image(&transparent).await.unwrap();
    assert_eq!(catalog.image(&transparent.id).await.unwrap(), Some(transparent.clone()), "{backend}");

    let ids = |rows: Vec<ImageRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    let all: Vec<String> = missing.iter().map(|row| row.id.clone()).collect();
    assert_eq!(ids(catalog.images_without_placeholder(None, 100).await.unwrap()), all, "{backend}");
    let first_page = ids(catalog.images_without_placeholder(None, 2).await.unwrap());
    assert_eq!(first_page, all[..2], "{backend}");
    let next = ids(catalog.images_without_placeholder(Some(&first_page[1]), 2).await.unwrap());
    assert_eq!(next, all[2..4], "{backend}");

    assert!(catalog.set_placeholder(&all[1], &clear).await.unwrap(), "{backend}");
    missing[1].placeholder = Some(clear.clone());
    assert_eq!(catalog.image(&all[1]).await.unwrap(), Some(missing[1].clone()), "{backend}");
    let left = ids(catalog.images_without_placeholder(None, 100).await.unwrap());
    assert_eq!(left, [&all[0], &all[2], &all[3], &all[4]].map(String::clone), "{backend}");
    assert!(!catalog.set_placeholder(&new_id(), &clear).await.unwrap(), "{backend}: no such image");
    for id in &left {
        catalog.delete_image(id).await.unwrap();
    }
    assert_eq!(catalog.images_without_placeholder(None, 100).await.unwrap(), [], "{backend}");
}

async fn images(catalog: &Catalog) {
    let backend = catalog.backend();
    let first = image(&new_id(), &sha256("1"));
    assert_eq!(catalog.insert_image(&first).await.unwrap(), Inserted::Created(first.clone()), "{backend}");

    // The same bytes again, under a new id: the stored row wins.
    let again = ImageRow { id: new_id(), format: "jpeg".to_owned(), ..first.clone() };
    assert_eq!(catalog.insert_image(&again).await.unwrap(), Inserted::Existing(first.clone()), "{backend}");

    // Values round-trip exactly, the extremes of u32 and large u64 included.
    assert_eq!(catalog.image(&first.id).await.unwrap(), Some(first.clone()), "{backend}");
    assert_eq!(catalog.image_by_sha256(&first.sha256).await.unwrap(), Some(first.clone()), "{backend}");
    assert_eq!(catalog.image(&again.id).await.unwrap(), None, "{backend}");
    assert_eq!(catalog.image("missing").await.unwrap(), None, "{backend}");
    assert_eq!(catalog.image_by_sha256(&sha256("missing")).await.unwrap(), None, "{backend}");
    // An image whose frames were not recorded (uploaded before the column) reads as `None`.
    let unrecorded = ImageRow { frames: None, ..image(&new_id(), &sha256("unrecorded")) };
    catalog.insert_image(&unrecorded).await.unwrap();
    assert_eq!(catalog.image(&unrecorded.id).await.unwrap(), Some(unrecorded), "{backend}");
}

async fn concurrent_inserts(catalog: &Catalog) {
    let backend = catalog.backend();
    let contested = sha256("2");
    let inserts = (0..8).map(|_| {
        let catalog = catalog.clone();
        let row = image(&new_id(), &contested);
        tokio::spawn(async move { catalog.insert_image(&row).await })
    });
    let mut created = 0;
    let mut ids = HashSet::new();
    for insert in inserts.collect::<Vec<_>>() {
        match insert.await.unwrap().unwrap_or_else(|e| panic!("{backend}: {e}")) {
            Inserted::Created(row) => {
                created += 1;
                ids.insert(row.id);
            }
            Inserted::Existing(row) => {
                ids.insert(row.id);
            }
        }
    }
    assert_eq!(created, 1, "{backend}: exactly one insert creates the row");
    assert_eq!(ids.len(), 1, "{backend}: every insert answers with the same row");
    let stored = catalog.image_by_sha256(&contested).await.unwrap().unwrap();
    assert!(ids.contains(&stored.id), "{backend}");
}

async fn listing(catalog: &Catalog) {
    let backend = catalog.backend();
    // Three images exist already (two from `images`, one from `concurrent_inserts`); five more,
    // newer.
    let mut expected: Vec<String> = catalog.list_images(100, None).await.unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(expected.len(), 3, "{backend}");
    for n in 0..5 {
        let row = image(&new_id(), &sha256(&format!("list{n}")));
        catalog.insert_image(&row).await.unwrap();
        expected.insert(0, row.id);
    }
    let mut sorted = expected.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(expected, sorted, "{backend}: the ids themselves are time-ordered");

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = catalog.list_images(2, cursor.as_deref()).await.unwrap();
        assert!(page.len() <= 2, "{backend}");
        let Some(last) = page.last() else { break };
        cursor = Some(last.id.clone());
        paged.extend(page.into_iter().map(|i| i.id));
    }
    assert_eq!(paged, expected, "{backend}: pages are newest first, complete, without repeats");
    assert!(catalog.list_images(0, None).await.unwrap().is_empty(), "{backend}");
    let oldest = expected.last().unwrap();
    assert!(catalog.list_images(10, Some(oldest)).await.unwrap().is_empty(), "{backend}");
}

async fn variants_and_deletion(catalog: &Catalog) {
    let backend = catalog.backend();
    let owner = image(&new_id(), &sha256("3"));
    catalog.insert_image(&owner).await.unwrap();
    let small = variant(&owner.id, "aa11");
    let large = VariantRow { width: u32::MAX, bytes: u64::from(u32::MAX) * 4, ..variant(&owner.id, "bb22") };
    assert!(catalog.insert_variant(&large).await.unwrap(), "{backend}");
    assert!(catalog.insert_variant(&small).await.unwrap(), "{backend}");
    assert_eq!(catalog.variant(&owner.id, "aa11").await.unwrap(), Some(small.clone()), "{backend}");
    assert_eq!(catalog.variant(&owner.id, "bb22").await.unwrap(), Some(large.clone()), "{backend}");
    assert_eq!(catalog.variant(&owner.id, "cc33").await.unwrap(), None, "{backend}");
    assert_eq!(catalog.variant("missing", "aa11").await.unwrap(), None, "{backend}");

    // A duplicate is a no-op that still reports success; the first row stays.
    let duplicate = VariantRow { format: "avif".to_owned(), ..small.clone() };
    assert!(catalog.insert_variant(&duplicate).await.unwrap(), "{backend}");
    assert_eq!(catalog.variant(&owner.id, "aa11").await.unwrap(), Some(small.clone()), "{backend}");

    // No image, no variant.
    let orphan = variant(&new_id(), "aa11");
    assert!(!catalog.insert_variant(&orphan).await.unwrap(), "{backend}");
    assert_eq!(catalog.variant(&orphan.image_id, "aa11").await.unwrap(), None, "{backend}");
    assert!(!catalog.blob_is_referenced(&orphan.blob_key).await.unwrap(), "{backend}");

    // A bystander image whose rows must survive the deletion.
    let bystander = image(&new_id(), &sha256("4"));
    catalog.insert_image(&bystander).await.unwrap();
    let bystander_variant = variant(&bystander.id, "aa11");
    assert!(catalog.insert_variant(&bystander_variant).await.unwrap(), "{backend}");

    let original_key = format!("originals/{}", owner.sha256);
    assert!(catalog.blob_is_referenced(&original_key).await.unwrap(), "{backend}");
    assert!(catalog.blob_is_referenced(&small.blob_key).await.unwrap(), "{backend}");
    assert!(catalog.blob_is_referenced(&large.blob_key).await.unwrap(), "{backend}");
    assert!(!catalog.blob_is_referenced(&format!("originals/{}", sha256("none"))).await.unwrap(), "{backend}");
    assert!(!catalog.blob_is_referenced("variants/none/none.webp").await.unwrap(), "{backend}");
    assert!(!catalog.blob_is_referenced("elsewhere/x").await.unwrap(), "{backend}");
    assert!(!catalog.blob_is_referenced(&format!("elsewhere/{}", owner.sha256)).await.unwrap(), "{backend}");

    assert_eq!(catalog.delete_image(&owner.id).await.unwrap(), Some(owner.clone()), "{backend}");
    assert_eq!(catalog.image(&owner.id).await.unwrap(), None, "{backend}");
    assert_eq!(catalog.image_by_sha256(&owner.sha256).await.unwrap(), None, "{backend}");
    assert_eq!(catalog.variant(&owner.id, "aa11").await.unwrap(), None, "{backend}");
    assert_eq!(catalog.variant(&owner.id, "bb22").await.unwrap(), None, "{backend}");
    assert_eq!(catalog.delete_image(&owner.id).await.unwrap(), None, "{backend}");
    assert!(!catalog.blob_is_referenced(&original_key).await.unwrap(), "{backend}");
    assert!(!catalog.blob_is_referenced(&small.blob_key).await.unwrap(), "{backend}");
    assert!(!catalog.blob_is_referenced(&large.blob_key).await.unwrap(), "{backend}");

    // A variant rendered while its image was being deleted is refused.
    assert!(!catalog.insert_variant(&small).await.unwrap(), "{backend}");
    assert_eq!(catalog.variant(&owner.id, "aa11").await.unwrap(), None, "{backend}");

    assert_eq!(catalog.image(&bystander.id).await.unwrap(), Some(bystander.clone()), "{backend}");
    assert_eq!(catalog.variant(&bystander.id, "aa11").await.unwrap(), Some(bystander_variant.clone()), "{backend}");
    assert!(catalog.blob_is_referenced(&bystander_variant.blob_key).await.unwrap(), "{backend}");

    // An image without variants deletes too.
    assert!(catalog.delete_image(&bystander.id).await.unwrap().is_some(), "{backend}");
    let lone = image(&new_id(), &sha256("5"));
    catalog.insert_image(&lone).await.unwrap();
    assert_eq!(catalog.delete_image(&lone.id).await.unwrap(), Some(lone), "{backend}");
}

async fn api_keys(catalog: &Catalog) {
    let backend = catalog.backend();
    assert_eq!(catalog.list_api_keys().await.unwrap(), [], "{backend}");
    let older = api_key("k-older", 1_000);
    let newer = api_key("k-newer", 2_000);
    // Inserted newest first, listed oldest first.
    catalog.insert_api_key(&newer).await.unwrap();
    catalog.insert_api_key(&older).await.unwrap();
    assert_eq!(catalog.list_api_keys().await.unwrap(), [older.clone(), newer.clone()], "{backend}");
    assert_eq!(catalog.active_api_key_by_hash(&older.key_hash).await.unwrap(), Some(older.clone()), "{backend}");
    assert_eq!(catalog.active_api_key_by_hash("hash-of-nothing").await.unwrap(), None, "{backend}");

    assert!(catalog.revoke_api_key(&older.id, 5_000).await.unwrap(), "{backend}");
    assert_eq!(catalog.active_api_key_by_hash(&older.key_hash).await.unwrap(), None, "{backend}");
    // Revoking again still finds the key, and keeps the first revocation time.
    assert!(catalog.revoke_api_key(&older.id, 9_000).await.unwrap(), "{backend}");
    assert!(!catalog.revoke_api_key("k-unknown", 5_000).await.unwrap(), "{backend}");
    let revoked = ApiKeyRow { revoked_at_ms: Some(5_000), ..older.clone() };
    assert_eq!(catalog.list_api_keys().await.unwrap(), [revoked, newer.clone()], "{backend}");
    assert_eq!(catalog.active_api_key_by_hash(&newer.key_hash).await.unwrap(), Some(newer), "{backend}");

    // A key stored already revoked is never active.
    let born_revoked = ApiKeyRow { revoked_at_ms: Some(3_000), ..api_key("k-born-revoked", 3_000) };
    catalog.insert_api_key(&born_revoked).await.unwrap();
    assert_eq!(catalog.active_api_key_by_hash(&born_revoked.key_hash).await.unwrap(), None, "{backend}");
    assert_eq!(catalog.list_api_keys().await.unwrap().len(), 3, "{backend}");
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::connect("", dir.path()).await.unwrap();
    assert_eq!(catalog.backend(), "sqlite");
    contract(catalog).await;
}

#[tokio::test]
async fn postgres() {
    Database::with_fresh(|url| async move {
        let catalog = Catalog::connect(&url, Path::new("/nonexistent")).await.unwrap();
        assert_eq!(catalog.backend(), "postgres");
        contract(catalog).await;
    })
    .await;
}

#[tokio::test]
async fn unsupported_schemes_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let error = Catalog::connect("mysql://x", dir.path()).await.unwrap_err();
    assert!(matches!(&error, CatalogError::Config(detail) if detail.contains("mysql")), "{error}");
}
