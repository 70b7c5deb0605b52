//! Support for Pixelmill's black-box tests: the input generators and the way to the built
//! binaries. The tests themselves are in `tests/`.

pub mod animation;
pub mod binaries;
pub mod encoders;
pub mod heif_edit;
pub mod hostile;
pub mod images;
pub mod server;
pub mod services;
pub mod tiff_files;
