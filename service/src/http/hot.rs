//! The in-process cache in front of the catalog and the store, for the render route's hits.
//!
//! A hit on a stored variant otherwise costs a catalog query (the image's row: its hash for the
//! ETag, its format for `fmt=auto`) and a store read, each a hand-off to another thread (sqlx's
//! SQLite worker, tokio's blocking pool) or a round trip to PostgreSQL and S3. Hot variants are
//! few; keeping them here makes a hit a hash lookup.
//!
//! Variants are immutable, so a cached variant is never wrong while its image exists. Rows can
//! go away: a delete on this process removes the row from here at once; on another replica the
//! row (and so its variants) stays reachable until `ttl` has passed. Responses already carry
//! `Cache-Control: immutable` for a year, so clients and CDNs hold them far longer than that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::catalog::ImageRow;

/// Rough per-entry overhead counted against the byte budget, besides the bytes themselves.
const ENTRY_OVERHEAD: u64 = 256;

#[derive(Clone)]
struct ByteWeight;

impl Weighter<String, Entry<Bytes>> for ByteWeight {
    fn weight(&self, key: &String, entry: &Entry<Bytes>) -> u64 {
        key.len() as u64 + entry.value.len() as u64 + ENTRY_OVERHEAD
    }
}

#[derive(Clone)]
struct Entry<T> {
    value: T,
    stored: Instant,
}

/// Image rows by id and variant bytes by blob key, each entry living at most `ttl`.
/// A budget of 0 bytes turns the cache off.
pub struct HotCache {
    images: Option<Cache<String, Entry<Arc<ImageRow>>>>,
    variants: Option<Cache<String, Entry<Bytes>, ByteWeight>>,
    ttl: Duration,
}

impl HotCache {
    pub fn new(budget_bytes: u64, ttl: Duration) -> HotCache {
        if budget_bytes == 0 || ttl.is_zero() {
            return HotCache { images: None, variants: None, ttl };
        }
        // Rows are small (~300 bytes): one per 16 KiB of budget is plenty for the variants kept.
        let rows = usize::try_from(budget_bytes / 16_384).unwrap_or(usize::MAX).max(64);
        // quick_cache sizes its tables from an item estimate; a variant is typically 10-50 kB.
        let variants = usize::try_from(budget_bytes / 32_768).unwrap_or(usize::MAX).max(16);
        HotCache {
            images: Some(Cache::new(rows)),
            variants: Some(Cache::with_weighter(variants, budget_bytes, ByteWeight)),
            ttl,
        }
    }

    fn fresh<T: Clone>(&self, entry: Option<Entry<T>>) -> Option<T> {
        entry.filter(|e| e.stored.elapsed() < self.ttl).map(|e| e.value)
    }

    pub fn image(&self, id: &str) -> Option<Arc<ImageRow>> {
        self.fresh(self.images.as_ref()?.get(id))
    }

    pub fn put_image(&self, row: Arc<ImageRow>) {
        if let Some(images) = &self.images {
            images.insert(row.id.clone(), Entry { value: row, stored: Instant::now() });
        }
    }

    /// Forgets an image (deleted here); its variants become unreachable, since every lookup of
    /// a variant starts from its image.
    pub fn forget_image(&self, id: &str) {
        if let Some(images) = &self.images {
            images.remove(id);
        }
    }

    pub fn variant(&self, key: &str) -> Option<Bytes> {
        self.fresh(self.variants.as_ref()?.get(key))
    }

    /// Forgets a variant (evicted here).
    pub fn remove_variant(&self, key: &str) {
        if let Some(variants) = &self.variants {
            variants.remove(key);
        }
    }

    pub fn put_variant(&self, key: String, bytes: Bytes) {
        if let Some(variants) = &self.variants {
            variants.insert(key, Entry { value: bytes, stored: Instant::now() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> Arc<ImageRow> {
        Arc::new(ImageRow {
            id: id.to_owned(),
            sha256: "ab".repeat(32),
            format: "jpeg".to_owned(),
            width: 10,
            height: 10,
            bytes: 100,
            created_at_ms: 0,
            frames: Some(1),
            placeholder: None,
        })
    }

    #[test]
    fn entries_expire_and_forgotten_images_are_gone() {
        let cache = HotCache::new(1 << 20, Duration::from_millis(50));
        cache.put_image(row("a"));
        cache.put_variant("variants/a/x.webp".to_owned(), Bytes::from_static(b"pixels"));
        assert_eq!(cache.image("a").map(|r| r.id.clone()).as_deref(), Some("a"));
        assert_eq!(cache.variant("variants/a/x.webp").as_deref(), Some(&b"pixels"[..]));
        cache.forget_image("a");
        assert!(cache.image("a").is_none());

        cache.put_image(row("b"));
        let stored = Instant::now();
        while stored.elapsed() < Duration::from_millis(60) {
            std::thread::yield_now();
        }
        assert!(cache.image("b").is_none(), "past its ttl an entry is a miss");
        assert!(cache.variant("variants/a/x.webp").is_none());
    }

    #[test]
    fn the_byte_budget_bounds_what_is_kept() {
        let cache = HotCache::new(64 * 1024, Duration::from_secs(60));
        for i in 0..64 {
            cache.put_variant(format!("variants/a/{i}.webp"), Bytes::from(vec![0u8; 4096]));
        }
        let kept = (0..64).filter(|i| cache.variant(&format!("variants/a/{i}.webp")).is_some()).count();
        assert!((1..=15).contains(&kept), "{kept} entries of 4 KiB kept in 64 KiB");
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = HotCache::new(0, Duration::from_secs(60));
        cache.put_image(row("a"));
        cache.put_variant("k".to_owned(), Bytes::from_static(b"x"));
        assert!(cache.image("a").is_none() && cache.variant("k").is_none());
    }
}
