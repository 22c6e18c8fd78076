//! Where the command line's local lake is.

use std::path::PathBuf;

use source_io::config::Config;

/// Directory of the local lake when `LAKE_DIR` (`--lake`) is not given: the one place
/// this default lives, since in Lambda an unset `LAKE_DIR` must select no lake at all.
pub const DEFAULT_LAKE_DIR: &str = "./lake";

/// The lake directory: `--lake`, else LAKE_DIR, else [`DEFAULT_LAKE_DIR`].
pub fn lake_dir(config: &Config) -> PathBuf {
    config
        .lake_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LAKE_DIR))
}
