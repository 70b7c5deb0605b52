//! Variant retention: `pixelmill gc --variants-unused-days N` removes the variants not served
//! for N days, rows then blobs, never an original; on both catalog backends, and the service
//! records the variants it serves.

// Test helpers shared by the #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use pixelmill::catalog::{Catalog, ImageRow, VariantRow};
use pixelmill::store::{BlobKey, BlobStore};
use pixelmill_tests::services::Database;

const DAY: i64 = 24 * 3600 * 1000;

async fn gc_removes_unused_variants_and_their_blobs(catalog: Catalog, data: &Path) {
    let backend = catalog.backend();
    catalog.migrate().await.unwrap();
    let store = BlobStore::open("", "", data, Duration::from_secs(10)).await.unwrap();
    let now = pixelmill::catalog::now_ms();
    let sha256 = format!("{:0>64}", "feed");
    let image = ImageRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        sha256: sha256.clone(),
        format: "png".to_owned(),
        width: 10,
        height: 10,
        bytes: 4,
        created_at_ms: now - 90 * DAY,
        frames: Some(1),
        placeholder: None,
    };
    let original = BlobKey::original(&sha256).unwrap();
    store.put(&original, Bytes::from_static(b"orig"), "image/png").await.unwrap();
    catalog.insert_image(&image).await.unwrap();
    // One variant made 60 days ago and never served since; one made as long ago but served
    // yesterday; one made today.
    let mut keys = Vec::new();
    for (key, made) in [("old", now - 60 * DAY), ("served", now - 60 * DAY), ("new", now)] {
        let blob = BlobKey::variant(&image.id, key, "webp").unwrap();
        store.put(&blob, Bytes::from(vec![7u8; 100]), "image/webp").await.unwrap();
        let row = VariantRow {
            image_id: image.id.clone(),
            variant_key: key.to_owned(),
            spec: format!("w={}", key.len()),
            format: "webp".to_owned(),
            width: 1,
            height: 1,
            bytes: 100,
            blob_key: blob.to_string(),
            created_at_ms: made,
        };
        assert!(catalog.insert_variant(&row).await.unwrap());
        keys.push(blob);
    }
    catalog.touch_variants(&[(image.id.clone(), "served".to_owned())], now - DAY, DAY).await.unwrap();

    let cutoff = now - 30 * DAY;
    let mut listed = Vec::new();
    let dry = pixelmill::retention::remove_unused_variants(&catalog, &store, cutoff, true, |v| {
        listed.push(v.variant_key.clone())
    })
    .await
    .unwrap();
    assert_eq!((dry.variants, dry.bytes, listed.as_slice()), (1, 100, ["old".to_owned()].as_slice()), "{backend}");
    assert!(store.get(&keys[0]).await.unwrap().is_some(), "{backend}: a dry run removes nothing");

    let done = pixelmill::retention::remove_unused_variants(&catalog, &store, cutoff, false, |_| {}).await.unwrap();
    assert_eq!((done.variants, done.bytes), (1, 100), "{backend}");
    assert!(catalog.variant(&image.id, "old").await.unwrap().is_none(), "{backend}");
    assert!(store.get(&keys[0]).await.unwrap().is_none(), "{backend}: its blob went with it");
    for (key, blob) in [("served", &keys[1]), ("new", &keys[2])] {
        assert!(catalog.variant(&image.id, key).await.unwrap().is_some(), "{backend}: {key}");
        assert!(store.get(blob).await.unwrap().is_some(), "{backend}: {key}");
    }
    assert!(store.get(&original).await.unwrap().is_some(), "{backend}: never an original");
    assert!(catalog.image(&image.id).await.unwrap().is_some(), "{backend}");
    // Nothing left to do.
    let again = pixelmill::retention::remove_unused_variants(&catalog, &store, cutoff, false, |_| {}).await.unwrap();
    assert_eq!(again.variants, 0, "{backend}");
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::connect("", dir.path()).await.unwrap();
    gc_removes_unused_variants_and_their_blobs(catalog, dir.path()).await;
}

#[tokio::test]
async fn postgres() {
    Database::with_fresh(|url| async move {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::connect(&url, dir.path()).await.unwrap();
        gc_removes_unused_variants_and_their_blobs(catalog, dir.path()).await;
    })
    .await;
}
