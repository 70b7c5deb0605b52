//! Variants are a cache: `pixelmill gc --variants-unused-days N` removes those not served for N
//! days (the catalog records when each was last served, see `AppState::flush_served`). Rows
//! first, then blobs: a row never points at a missing blob, and a blob another row still
//! references stays. Only variant blobs are ever removed here; originals never are.

use crate::catalog::{Catalog, VariantRow};
use crate::store::{BlobKey, BlobStore};

/// Variant rows read from the catalog at a time.
const PAGE: u32 = 500;

/// What a run removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub variants: u64,
    /// The variants' bytes, as recorded.
    pub bytes: u64,
}

/// Removes the variants last served before `cutoff_ms`; `dry_run` removes nothing and counts
/// what would go. `each` hears of every variant removed (or that would be).
pub async fn remove_unused_variants(
    catalog: &Catalog,
    store: &BlobStore,
    cutoff_ms: i64,
    dry_run: bool,
    mut each: impl FnMut(&VariantRow),
) -> anyhow::Result<Removed> {
    let mut removed = Removed::default();
    let mut after: Option<(String, String)> = None;
    loop {
        let cursor = after.as_ref().map(|(image, key)| (image.as_str(), key.as_str()));
        let page = catalog.variants_unused_since(cutoff_ms, cursor, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.image_id.clone(), last.variant_key.clone()));
        for variant in &page {
            if !variant.blob_key.starts_with("variants/") {
                anyhow::bail!(
                    "variant {}/{} names blob {}, not a variant's",
                    variant.image_id,
                    variant.variant_key,
                    variant.blob_key
                );
            }
            let gone = if dry_run {
                Some(variant.clone())
            } else {
                // Served since it was listed: it stays.
                catalog.delete_variant_unused_since(&variant.image_id, &variant.variant_key, cutoff_ms).await?
            };
            let Some(gone) = gone else { continue };
            if !dry_run && !catalog.blob_is_referenced(&gone.blob_key).await? {
                store.delete(&BlobKey::parse(&gone.blob_key)?).await?;
            }
            removed.variants += 1;
            removed.bytes += gone.bytes;
            each(&gone);
        }
    }
    Ok(removed)
}
