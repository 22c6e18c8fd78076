//! Where the command line's local lake is.

use std::path::PathBuf;

use source_io::config::Config;
use source_io::settings::{LAKE_DIR, Mode};

/// The lake directory: `--lake`, else `LAKE_DIR`, else its local default (`./lake`, declared
/// in `settings.rs`; the configuration of the command line always has one).
pub fn lake_dir(config: &Config) -> PathBuf {
    config
        .lake_dir
        .clone()
        .or_else(|| LAKE_DIR.default_in(Mode::Local).map(PathBuf::from))
        .unwrap_or_default()
}
