//! `pixelmill backfill`: placeholders for the images uploaded before they were computed at
//! upload. In batches, in id order: each image's original is read from the store and validated
//! as an upload is (the same decode, the same limits), and its row updated. A run that stops
//! part-way (a crash, Ctrl-C, a deploy) resumes where it stopped: it asks the catalog again for
//! images without placeholders, and those it filled no longer are. An image whose original is
//! missing or no longer decodes is reported and skipped, so a run always ends; the next run
//! tries it again.

use std::time::Instant;

use crate::catalog::{Catalog, ImageRow};
use crate::engine::{self, Limits};
use crate::store::{BlobKey, BlobStore};

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Images given placeholders.
    pub filled: u64,
    /// Images skipped: original missing or not decodable.
    pub failed: u64,
}

/// Fills the placeholders of every image without them, `batch` images a catalog query;
/// `report` hears of each batch done and of each failure.
pub async fn run(
    catalog: &Catalog,
    store: &BlobStore,
    limits: Limits,
    batch: u32,
    mut report: impl FnMut(&Progress, Option<(&ImageRow, &str)>),
) -> anyhow::Result<Progress> {
    let mut progress = Progress::default();
    let mut after: Option<String> = None;
    loop {
        let images = catalog.images_without_placeholder(after.as_deref(), batch.max(1)).await?;
        let Some(last) = images.last() else { break };
        after = Some(last.id.clone());
        for image in &images {
            match placeholder_of(store, image, limits).await {
                Ok(placeholder) => {
                    // An image deleted meanwhile has nothing to fill: not a failure.
                    catalog.set_placeholder(&image.id, &placeholder).await?;
                    progress.filled += 1;
                }
                Err(why) => {
                    progress.failed += 1;
                    report(&progress, Some((image, &why)));
                }
            }
        }
        report(&progress, None);
    }
    Ok(progress)
}

/// The placeholders of one image, from its original.
async fn placeholder_of(
    store: &BlobStore,
    image: &ImageRow,
    limits: Limits,
) -> Result<crate::catalog::Placeholders, String> {
    let key = BlobKey::original(&image.sha256).map_err(|e| e.to_string())?;
    let bytes = store.get(&key).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{key} is missing"))?;
    // CPU work off the runtime's workers, as the service does.
    let validated = tokio::task::spawn_blocking(move || engine::validate(&bytes, &limits))
        .await
        .map_err(|e| format!("the decode stopped: {e}"))?
        .map_err(|e| e.to_string())?;
    Ok(validated.placeholder.into())
}

/// The command's progress lines: one a batch, one a failure, and the rate.
pub fn print(started: Instant) -> impl FnMut(&Progress, Option<(&ImageRow, &str)>) {
    move |progress, failure| match failure {
        Some((image, why)) => eprintln!("backfill: image {} skipped: {why}", image.id),
        None => {
            let seconds = started.elapsed().as_secs_f64().max(1e-3);
            println!(
                "backfill: {} filled, {} skipped ({:.1} images/s)",
                progress.filled,
                progress.failed,
                (progress.filled + progress.failed) as f64 / seconds
            );
        }
    }
}
