//! The fuzz targets' shared code: see [`targets`].
pub mod targets;
