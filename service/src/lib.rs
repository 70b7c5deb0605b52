//! Pixelmill: an image service. See ARCHITECTURE.md for the map of this crate.

pub mod cli;
pub mod config;
pub mod engine;
pub mod store;
