//! Benches of Pixelmill: `benches/engine.rs` (criterion) and the side-by-side scripts beside it.
