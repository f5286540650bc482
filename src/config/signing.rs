//! `[signing]`: the key that signs every recording's manifest.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningConfig {
    /// The minisign secret key file (unencrypted; made by `entry keys create`). Default:
    /// `signing.key` in the data directory, created on the first start when missing; a
    /// configured file that is missing stops the start instead, so a typo never makes a new key.
    pub key_file: Option<PathBuf>,
}
