//! The configurable bounds every backup source is read within, and their documented defaults.
//! A backup past any of them is refused with a typed error before it can exhaust memory.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// Bounds on what a backup may hold and what loading it may cost. Defaults are documented in
/// `docs/security.md` (with the chart's memory limit they are sized for) and `docs/backup-format.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Limits {
    /// Largest archive (compressed `.tar.gz`, download, ConfigMap binary) in bytes. Default 32 MiB.
    pub max_archive_bytes: u64,
    /// Largest total of all files once unpacked, in bytes. Default 64 MiB.
    pub max_unpacked_bytes: u64,
    /// Most files and folders in a backup. Default 20 000.
    pub max_files: usize,
    /// Largest single file (an item, the manifest, a script) in bytes. Default 4 MiB.
    pub max_item_bytes: u64,
    /// Most items in a backup. Default 10 000.
    pub max_items: usize,
    /// Deepest nesting of arrays and objects in one JSON or YAML file. Default 64.
    pub max_depth: usize,
    /// Most values (scalars, arrays, objects) one file may produce, YAML alias expansions
    /// included. Default 200 000.
    pub max_values_per_file: u64,
    /// Most values all files of one load may produce together. Default 1 000 000.
    pub max_values_total: u64,
    /// Longest one load (unpacking and parsing) may take, in seconds. Default 60.
    pub load_timeout_seconds: u64,
    /// Loads parsed at once in one process (each on a blocking thread, off the async runtime);
    /// further loads wait. Default 2.
    pub max_concurrent_loads: usize,
    /// Largest ratio of unpacked to compressed size. Default 200.
    pub max_decompression_ratio: u64,
    /// Unpacked bytes below which the ratio is not enforced (tiny archives of repetitive JSON
    /// legitimately compress very well). Default 1 MiB.
    pub ratio_grace_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_archive_bytes: 32 * MIB,
            max_unpacked_bytes: 64 * MIB,
            max_files: 20_000,
            max_item_bytes: 4 * MIB,
            max_items: 10_000,
            max_depth: 64,
            max_values_per_file: 200_000,
            max_values_total: 1_000_000,
            load_timeout_seconds: 60,
            max_concurrent_loads: 2,
            max_decompression_ratio: 200,
            ratio_grace_bytes: MIB,
        }
    }
}

impl Limits {
    /// How many bytes an archive of `compressed` bytes may unpack to, and whether that cap comes
    /// from the ratio (true) or from `max_unpacked_bytes` (false).
    pub(crate) fn unpack_cap(&self, compressed: u64) -> (u64, bool) {
        let by_ratio = compressed.saturating_mul(self.max_decompression_ratio).max(self.ratio_grace_bytes);
        if by_ratio < self.max_unpacked_bytes { (by_ratio, true) } else { (self.max_unpacked_bytes, false) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_archives_get_the_grace_allowance_and_large_ones_the_absolute_cap() {
        let limits = Limits::default();
        assert_eq!(limits.unpack_cap(100), (MIB, true));
        assert_eq!(limits.unpack_cap(100 * 1024), (200 * 100 * 1024, true));
        assert_eq!(limits.unpack_cap(10 * MIB), (64 * MIB, false));
    }

    #[test]
    fn limits_read_from_partial_json_keep_the_other_defaults() {
        let limits: Limits = serde_json::from_str(r#"{"maxFiles": 10}"#).unwrap();
        assert_eq!(limits.max_files, 10);
        assert_eq!(limits.max_item_bytes, Limits::default().max_item_bytes);
    }
}
