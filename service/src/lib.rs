//! Pixelmill: an image service. See ARCHITECTURE.md for the map of this crate.

#[cfg(feature = "server")]
pub mod backfill;
#[cfg(feature = "server")]
pub mod catalog;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod config;
pub mod engine;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod processing;
#[cfg(feature = "server")]
pub mod retention;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod telemetry;
