//! Pixelmill: an image service. See ARCHITECTURE.md for the map of this crate.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
pub mod processing;
pub mod store;
pub mod telemetry;
