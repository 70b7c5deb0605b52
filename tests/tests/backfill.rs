//! `pixelmill backfill`: placeholders for images uploaded before they were computed, on both
//! catalog backends, and the command as a user runs it.

// Test helpers shared by the #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use image::{Rgb, RgbImage};
use pixelmill::catalog::{Catalog, ImageRow, Placeholders};
use pixelmill::engine::{self, Limits};
use pixelmill::store::{BlobKey, BlobStore};
use pixelmill_tests::images;
use pixelmill_tests::server::pixelmill;
use pixelmill_tests::services::Database;

fn old_image(sha256: &str, width: u32, height: u32) -> ImageRow {
    ImageRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        sha256: sha256.to_owned(),
        format: "jpeg".to_owned(),
        width,
        height,
        bytes: 1,
        created_at_ms: 1_700_000_000_000,
        frames: Some(1),
        placeholder: None,
    }
}

/// Stores `bytes` as an original and catalogues it without placeholders, as an image uploaded
/// before they existed.
async fn upload_old(catalog: &Catalog, store: &BlobStore, seed: &str, bytes: Option<Vec<u8>>) -> ImageRow {
    let sha256 = format!("{seed:0>64}");
    if let Some(bytes) = bytes {
        store.put(&BlobKey::original(&sha256).unwrap(), Bytes::from(bytes), "image/jpeg").await.unwrap();
    }
    let row = old_image(&sha256, 10, 10);
    catalog.insert_image(&row).await.unwrap();
    row
}

async fn backfill_fills_what_decodes_and_skips_the_rest(catalog: Catalog, data: &Path) {
    let backend = catalog.backend();
    catalog.migrate().await.unwrap();
    let store = BlobStore::open("", "", data, Duration::from_secs(10)).await.unwrap();
    let red = images::jpeg(&RgbImage::from_pixel(640, 480, Rgb([200, 30, 30])));
    let stripes = images::png(&RgbImage::from_fn(300, 200, |x, _| Rgb(if x < 200 { [0, 90, 255] } else { [0; 3] })));
    let good = [
        upload_old(&catalog, &store, "a1", Some(red.clone())).await,
        upload_old(&catalog, &store, "a2", Some(stripes.clone())).await,
        upload_old(&catalog, &store, "a3", Some(images::jpeg(&images::pattern(800, 500)))).await,
    ];
    let missing = upload_old(&catalog, &store, "b1", None).await;
    let corrupt = upload_old(&catalog, &store, "b2", Some(red[..red.len() / 3].to_vec())).await;
    // One filled already, as by a run that stopped part-way: it is not done again.
    let done_before = Placeholders { thumbhash: "kept".to_owned(), blurhash: "kept".to_owned(), dominant_color: None };
    catalog.set_placeholder(&good[2].id, &done_before).await.unwrap();

    let mut failures = Vec::new();
    let mut batches = 0;
    let progress = pixelmill::backfill::run(&catalog, &store, Limits::default(), 2, |_, failure| match failure {
        Some((image, why)) => failures.push((image.id.clone(), why.to_owned())),
        None => batches += 1,
    })
    .await
    .unwrap();
    assert_eq!((progress.filled, progress.failed), (2, 2), "{backend}: {failures:?}");
    // Four images to do, two a batch.
    assert_eq!(batches, 2, "{backend}");
    let failed: Vec<&str> = failures.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(failed, [missing.id.as_str(), corrupt.id.as_str()], "{backend}");
    assert!(failures[0].1.contains("missing"), "{backend}: {failures:?}");

    // What the backfill stored is what an upload computes.
    for (row, bytes, colour) in [(&good[0], &red, "#c81e1e"), (&good[1], &stripes, "#005aff")] {
        let stored = catalog.image(&row.id).await.unwrap().unwrap().placeholder.unwrap();
        let computed = engine::validate(bytes, &Limits::default()).unwrap().placeholder;
        assert_eq!(stored, computed.into(), "{backend}");
        // JPEG's rounding may move a flat colour by a level; the PNG's is exact.
        if bytes == &stripes {
            assert_eq!(stored.dominant_color.as_deref(), Some(colour), "{backend}");
        }
    }
    assert_eq!(catalog.image(&good[2].id).await.unwrap().unwrap().placeholder, Some(done_before), "{backend}");

    // A second run tries the failures again and fills nothing else.
    let again = pixelmill::backfill::run(&catalog, &store, Limits::default(), 100, |_, _| {}).await.unwrap();
    assert_eq!((again.filled, again.failed), (0, 2), "{backend}");
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::connect("", dir.path()).await.unwrap();
    backfill_fills_what_decodes_and_skips_the_rest(catalog, dir.path()).await;
}

#[tokio::test]
async fn postgres() {
    Database::with_fresh(|url| async move {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::connect(&url, dir.path()).await.unwrap();
        backfill_fills_what_decodes_and_skips_the_rest(catalog, dir.path()).await;
    })
    .await;
}

#[tokio::test]
async fn the_command_reports_progress_and_fills_the_embedded_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let missing = {
        let catalog = Catalog::connect("", &data).await.unwrap();
        catalog.migrate().await.unwrap();
        let store = BlobStore::open("", "", &data, Duration::from_secs(10)).await.unwrap();
        let photo = images::jpeg(&images::pattern(400, 300));
        upload_old(&catalog, &store, "c1", Some(photo)).await;
        upload_old(&catalog, &store, "c2", None).await
    };
    let output = pixelmill().args(["backfill", "--batch", "1"]).env("PIXELMILL_DATA_DIR", &data).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("backfill: done: 1 filled, 1 skipped"), "{stdout}");
    assert_eq!(stdout.lines().filter(|line| line.contains("images/s")).count(), 2, "a line a batch: {stdout}");
    assert!(stderr.contains(&format!("backfill: image {} skipped: ", missing.id)), "{stderr}");
    let catalog = Catalog::connect("", &data).await.unwrap();
    let left = catalog.images_without_placeholder(None, 10).await.unwrap();
    assert_eq!(left, [missing]);
}
