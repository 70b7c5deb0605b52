//! The blob-store contract, run against every backend. The S3 run needs a real S3-compatible
//! server; `cargo xtask ci` starts Garage and sets PIXELMILL_TEST_S3_URL and the AWS variables.

// Test helpers shared by the #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use pixelmill::store::{BlobKey, BlobStore, LocalStore};

fn key(name: &str) -> BlobKey {
    BlobKey::parse(name).unwrap()
}

async fn contract(store: BlobStore) {
    let backend = store.backend();
    store.check(Duration::from_secs(5)).await.unwrap_or_else(|e| panic!("{backend}: {e}"));

    // Missing blobs are None, not errors; deleting one succeeds.
    assert_eq!(store.get(&key("originals/missing")).await.unwrap(), None, "{backend}");
    store.delete(&key("originals/missing")).await.unwrap();

    // Round trip, overwrite, delete.
    let first = key("originals/aaaa");
    store.put(&first, Bytes::from_static(b"first bytes"), "image/jpeg").await.unwrap();
    assert_eq!(store.get(&first).await.unwrap().as_deref(), Some(&b"first bytes"[..]), "{backend}");
    store.put(&first, Bytes::from_static(b"second"), "image/jpeg").await.unwrap();
    assert_eq!(store.get(&first).await.unwrap().as_deref(), Some(&b"second"[..]), "{backend}");

    // Large blobs survive intact.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let variant = key("variants/img1/0123abcd.webp");
    store.put(&variant, Bytes::from(big.clone()), "image/webp").await.unwrap();
    assert_eq!(store.get(&variant).await.unwrap().as_deref(), Some(&big[..]), "{backend}");

    // Listing by prefix sees exactly the blobs under it.
    store.put(&key("variants/img2/ffff.jpg"), Bytes::from_static(b"x"), "image/jpeg").await.unwrap();
    let listed: Vec<String> = store.list("variants/").await.unwrap().into_iter().map(|e| e.key.to_string()).collect();
    assert_eq!(listed, ["variants/img1/0123abcd.webp", "variants/img2/ffff.jpg"], "{backend}");
    let originals = store.list("originals/").await.unwrap();
    assert_eq!(originals.len(), 1, "{backend}");
    assert!(originals[0].modified.elapsed().unwrap_or_default() < Duration::from_secs(600), "{backend}: modified time");

    // Concurrent writers of one key leave one whole blob, never a mix.
    let contested = key("originals/contested");
    let writers = (0..8u8).map(|i| {
        let store = store.clone();
        let contested = contested.clone();
        tokio::spawn(async move { store.put(&contested, Bytes::from(vec![i; 200_000]), "image/png").await })
    });
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let blob = store.get(&contested).await.unwrap().unwrap();
    assert_eq!(blob.len(), 200_000, "{backend}");
    assert!(blob.iter().all(|b| *b == blob[0]), "{backend}: a torn write");

    for entry in store.list("").await.unwrap() {
        store.delete(&entry.key).await.unwrap();
    }
    assert!(store.list("").await.unwrap().is_empty(), "{backend}");
}

#[tokio::test]
async fn local_directory_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::Local(LocalStore::open(dir.path().join("blobs")).await.unwrap());
    contract(store).await;
    // Nothing is left behind but the directories: no temporary files.
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.is_file()).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn keys_cannot_escape_the_store() {
    for bad in
        ["", "/etc/passwd", "../x", "originals/../../x", "a//b", "UPPER", "a/./b", "a\\b", "a b", ".tmp-1", "x/.hidden"]
    {
        assert!(BlobKey::parse(bad).is_err(), "{bad:?} was accepted");
    }
    assert!(BlobKey::parse("originals/0a1b").is_ok());
    assert!(BlobKey::parse(&"a".repeat(513)).is_err());
}

#[tokio::test]
async fn s3_store_keeps_the_contract_on_a_real_s3_server() {
    use pixelmill::store::{S3Location, S3Store};
    let url = std::env::var("PIXELMILL_TEST_S3_URL").expect(
        "PIXELMILL_TEST_S3_URL is unset: start the services with `bash .ci/services.sh start` (cargo xtask ci does)",
    );
    let endpoint = std::env::var("PIXELMILL_TEST_S3_ENDPOINT").unwrap_or_default();
    // A prefix of its own, so runs and other tests never see each other's blobs.
    let location = S3Location::parse(&format!("{url}/contract-{}", std::process::id())).unwrap();
    contract(BlobStore::S3(S3Store::connect(location, &endpoint, Duration::from_secs(30)).await)).await;
}
