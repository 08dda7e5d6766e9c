//! The `delta:` section: delta compression of versioned artifacts. Objects
//! are grouped into deltaspaces (same bucket and directory, or a configured
//! group); the first eligible object of a deltaspace becomes its reference,
//! later ones are stored as deltas against it when that pays off. The policy
//! here is judged on the bucket, key and size alone; the data plane judges
//! the content (see `docs/delta.md`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::BucketName;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Key suffixes of media compressed as one whole stream, where a delta
/// cannot find shared bytes (`deny_media`). Zip-like containers (`.zip`,
/// `.whl`, `.jar`) compress member by member and are not listed.
pub const MEDIA_SUFFIXES: &[&str] = &[
    ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zst", ".tzst", ".lz4", ".lz", ".lzma", ".br", ".7z", ".rar",
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".heic", ".mp3", ".aac", ".ogg", ".opus", ".flac", ".mp4",
    ".m4v", ".m4a", ".mkv", ".webm", ".mov", ".avi",
];

/// ```yaml
/// delta:
///   enabled: false              # off everywhere unless a rule turns it on
///   max_delta_ratio: 0.75
///   rules:
///     - { bucket: wheels, allow: ["*.whl"] }
///     - { bucket: builds, prefix: nightly/, group: nightly, min_size: 1048576 }
///     - { bucket: builds, prefix: tmp/, delta: off }
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeltaConfig {
    /// Delta compression for buckets and keys no rule matches. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// A delta is kept only when it is at most this fraction of the object
    /// (0 < r <= 1); otherwise the object is stored whole. Default 0.75.
    #[serde(default = "default_max_delta_ratio")]
    pub max_delta_ratio: f64,
    /// Objects smaller than this are stored whole. Default 64 KiB.
    #[serde(default = "default_min_size")]
    pub min_size: u64,
    /// When the mean ratio (delta / object) of the last `reselect_window`
    /// deltas of a deltaspace exceeds this, the next eligible write becomes
    /// the deltaspace's new reference. Default 0.5.
    #[serde(default = "default_reselect_ratio")]
    pub reselect_ratio: f64,
    /// How many recent deltas `reselect_ratio` averages. Default 5.
    #[serde(default = "default_reselect_window")]
    pub reselect_window: u32,
    /// zstd level of references and deltas on the write path. Default 1:
    /// with long-distance matching against the reference, level 1 encodes
    /// a tar delta ~15% faster than level 3 and no larger (the matches come
    /// from the reference, not the level), and both references and deltas
    /// are recompressed at a high level off the write path (`compact_level`).
    #[serde(default = "default_level")]
    pub level: i32,
    /// zstd level the background `delta-compact` job recompresses
    /// references at (long window), off the write path; 0 turns it off.
    /// Default 19.
    #[serde(default = "default_compact_level")]
    pub compact_level: i32,
    /// Objects larger than this are stored whole. Default 4 GiB.
    #[serde(default = "default_max_object_size")]
    pub max_object_size: u64,
    /// Where data planes cache decoded references. Default `DATA_DIR/delta-cache`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Bytes of decoded references kept in `cache_dir`. Default 2 GiB.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
    /// Bytes of decoded references kept in memory. Default 64 MiB.
    #[serde(default = "default_memory_cache_bytes")]
    pub memory_cache_bytes: u64,
    /// Deltas encoded or decoded at once per data plane. Default 2.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: u32,
    /// Never delta keys of media compressed as a whole stream (`.gz`,
    /// `.zst`, `.jpg`, `.mp4`, ...; see [`MEDIA_SUFFIXES`]) unless a rule's
    /// `allow` names them. Default true.
    #[serde(default = "default_true")]
    pub deny_media: bool,
    /// Per-bucket and per-prefix settings; the first rule whose bucket is
    /// the object's and whose prefix starts its key wins.
    #[serde(default)]
    pub rules: Vec<DeltaRule>,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeltaSwitch {
    #[default]
    On,
    Off,
}

/// Delta compression for the keys of one bucket under one prefix.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeltaRule {
    /// The bucket (exact name).
    pub bucket: String,
    /// Keys starting with this. Default "" (every key).
    #[serde(default)]
    pub prefix: String,
    /// `on` or `off`. Default `on`.
    #[serde(default)]
    pub delta: DeltaSwitch,
    /// Overrides `delta.min_size` for these keys.
    #[serde(default)]
    pub min_size: Option<u64>,
    /// Key globs (`*` any characters, `?` one), e.g. `*.whl`: when not
    /// empty, only matching keys are eligible.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Key globs never eligible (wins over `allow`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// A deltaspace name shared by every matching key, instead of each
    /// key's directory.
    #[serde(default)]
    pub group: Option<String>,
}

fn default_max_delta_ratio() -> f64 {
    0.75
}
fn default_min_size() -> u64 {
    64 * KIB
}
fn default_reselect_ratio() -> f64 {
    0.5
}
fn default_reselect_window() -> u32 {
    5
}
fn default_compact_level() -> i32 {
    19
}

fn default_level() -> i32 {
    1
}
fn default_max_object_size() -> u64 {
    4 * GIB
}
fn default_cache_bytes() -> u64 {
    2 * GIB
}
fn default_memory_cache_bytes() -> u64 {
    64 * MIB
}
fn default_max_concurrency() -> u32 {
    2
}
fn default_true() -> bool {
    true
}

impl Default for DeltaConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("empty delta config deserializes")
    }
}

/// Whether `text` matches `pattern`, where `*` matches any characters
/// (slashes included) and `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl DeltaConfig {
    /// The directory of the data planes' reference cache.
    pub fn cache_dir(&self, data_dir: &Path) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| data_dir.join("delta-cache"))
    }

    /// `max_delta_ratio` in permille, as `DeltaPlan::max_delta_permille`.
    pub fn max_delta_permille(&self) -> u32 {
        (self.max_delta_ratio * 1000.0).round().clamp(0.0, 1000.0) as u32
    }

    /// `reselect_ratio` in permille.
    pub fn reselect_permille(&self) -> u32 {
        (self.reselect_ratio * 1000.0).round().clamp(0.0, u32::MAX as f64) as u32
    }

    /// The first rule matching (bucket, key), if any.
    pub fn rule_for(&self, bucket: &str, key: &str) -> Option<&DeltaRule> {
        self.rules
            .iter()
            .find(|r| r.bucket == bucket && key.starts_with(&r.prefix))
    }

    /// Whether an object of `bucket`/`key` (of `size_hint` bytes, when
    /// known) may be delta-compressed: `Ok(deltaspace)` or `Err(reason)`.
    /// The deltaspace is `bucket/` followed by the rule's `group`, or by the
    /// key up to and including its last `/`.
    pub fn policy(&self, bucket: &str, key: &str, size_hint: Option<u64>) -> Result<String, String> {
        let rule = self.rule_for(bucket, key);
        match rule {
            Some(r) if r.delta == DeltaSwitch::Off => {
                return Err(format!("delta off for {bucket}/{}", r.prefix));
            }
            None if !self.enabled => return Err("delta not enabled".into()),
            _ => {}
        }
        let mut allowed_explicitly = false;
        if let Some(r) = rule {
            if let Some(g) = r.deny.iter().find(|g| glob_match(g, key)) {
                return Err(format!("key matches deny `{g}`"));
            }
            if !r.allow.is_empty() {
                if !r.allow.iter().any(|g| glob_match(g, key)) {
                    return Err("key matches no allow pattern".into());
                }
                allowed_explicitly = true;
            }
        }
        if self.deny_media && !allowed_explicitly {
            let lower = key.to_ascii_lowercase();
            if let Some(sfx) = MEDIA_SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
                return Err(format!("compressed media ({sfx})"));
            }
        }
        if let Some(size) = size_hint {
            let min = rule.and_then(|r| r.min_size).unwrap_or(self.min_size);
            if size < min {
                return Err(format!("below min_size {min}"));
            }
            if size > self.max_object_size {
                return Err(format!("above max_object_size {}", self.max_object_size));
            }
        }
        let tail = match rule.and_then(|r| r.group.as_deref()) {
            Some(group) => group,
            None => key.rfind('/').map_or("", |i| &key[..=i]),
        };
        Ok(format!("{bucket}/{tail}"))
    }

    pub(super) fn validate(&self, errs: &mut Vec<ConfigError>) {
        let mut err = |field: &str, msg: &str| errs.push(ConfigError::new(format!("delta.{field}"), msg));
        if !(self.max_delta_ratio > 0.0 && self.max_delta_ratio <= 1.0) {
            err(
                "max_delta_ratio",
                "must be greater than 0 and at most 1, e.g. 0.75 (keep deltas up to 75 % of the object)",
            );
        }
        if !(self.reselect_ratio > 0.0 && self.reselect_ratio <= 1.0) {
            err(
                "reselect_ratio",
                "must be greater than 0 and at most 1, e.g. 0.5 (pick a new reference when deltas average over half the object)",
            );
        }
        if self.reselect_window == 0 {
            err("reselect_window", "must be at least 1, e.g. 5");
        }
        if !(-7..=22).contains(&self.level) {
            err("level", "must be a zstd level from -7 to 22; 6 is a good default");
        }
        if self.compact_level != 0 && !(1..=22).contains(&self.compact_level) {
            err(
                "compact_level",
                "must be 0 (off) or a zstd level from 1 to 22; 19 is usual",
            );
        }
        if self.max_object_size == 0 {
            err("max_object_size", "must be at least 1 byte, e.g. 4294967296 (4 GiB)");
        }
        if self.min_size > self.max_object_size {
            err(
                "min_size",
                "must not exceed max_object_size; lower min_size or raise max_object_size",
            );
        }
        if self.cache_bytes == 0 {
            err("cache_bytes", "must be at least 1 byte, e.g. 2147483648 (2 GiB)");
        }
        if self.max_concurrency == 0 {
            err("max_concurrency", "must be at least 1, e.g. 2");
        }
        if self.cache_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            err("cache_dir", "must not be empty; remove it to use DATA_DIR/delta-cache");
        }
        for (i, r) in self.rules.iter().enumerate() {
            let f = |name: &str| format!("rules[{i}].{name}");
            if BucketName::new(r.bucket.clone()).is_err() {
                err(
                    &f("bucket"),
                    &format!(
                        "`{}` is not a valid S3 bucket name; give the bucket's exact name",
                        r.bucket
                    ),
                );
            }
            for (name, globs) in [("allow", &r.allow), ("deny", &r.deny)] {
                if globs.iter().any(|g| g.is_empty()) {
                    err(&f(name), "has an empty pattern; use `*` to match every key");
                }
            }
            if let Some(g) = &r.group
                && (g.is_empty() || g.starts_with('/'))
            {
                err(
                    &f("group"),
                    "must be a non-empty name not starting with `/`, e.g. `nightly`; remove it to group by directory",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> DeltaConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults() {
        let c = DeltaConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.max_delta_ratio, 0.75);
        assert_eq!(c.max_delta_permille(), 750);
        assert_eq!(c.min_size, 64 * 1024);
        assert_eq!(c.reselect_ratio, 0.5);
        assert_eq!(c.reselect_window, 5);
        assert_eq!(c.level, 1);
        assert_eq!(c.max_object_size, 4 << 30);
        assert_eq!(c.cache_bytes, 2 << 30);
        assert_eq!(c.memory_cache_bytes, 64 << 20);
        assert_eq!(c.max_concurrency, 2);
        assert!(c.deny_media);
        assert_eq!(c.cache_dir(Path::new("/d")), PathBuf::from("/d/delta-cache"));
        let mut errs = Vec::new();
        c.validate(&mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        // Off by default.
        assert_eq!(c.policy("b", "a/x.bin", Some(1 << 20)), Err("delta not enabled".into()));
    }

    #[test]
    fn enabled_groups_by_directory() {
        let c = cfg("enabled: true");
        assert_eq!(c.policy("b", "rel/v1/app.bin", Some(1 << 20)), Ok("b/rel/v1/".into()));
        assert_eq!(c.policy("b", "top.bin", None), Ok("b/".into()));
        // Unknown size is eligible; the min size applies to known ones.
        assert_eq!(c.policy("b", "x/small", Some(100)), Err("below min_size 65536".into()));
        assert!(
            c.policy("b", "x/big", Some(5 << 30))
                .unwrap_err()
                .contains("max_object_size")
        );
        assert_eq!(c.policy("b", "x/y.tar.GZ", None), Err("compressed media (.gz)".into()));
        assert_eq!(c.policy("b", "x/y.whl", None), Ok("b/x/".into()));
        let c = cfg("{enabled: true, deny_media: false}");
        assert_eq!(c.policy("b", "x/y.tar.gz", None), Ok("b/x/".into()));
    }

    #[test]
    fn rules_first_match_wins() {
        let c = cfg(r#"
enabled: false
min_size: 10
rules:
  - { bucket: builds, prefix: tmp/, delta: off }
  - { bucket: builds, prefix: nightly/, group: nightly, min_size: 1000 }
  - { bucket: builds }
  - { bucket: wheels, allow: ["*.whl", "pkg-?.tar"], deny: ["*-dev*"] }
  - { bucket: media, allow: ["*.gz"] }
"#);
        let mut errs = Vec::new();
        c.validate(&mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            c.policy("builds", "tmp/a", Some(50)),
            Err("delta off for builds/tmp/".into())
        );
        assert_eq!(
            c.policy("builds", "nightly/2024/a.bin", Some(5000)),
            Ok("builds/nightly".into())
        );
        assert_eq!(
            c.policy("builds", "nightly/b.bin", Some(500)),
            Err("below min_size 1000".into())
        );
        assert_eq!(c.policy("builds", "other/b.bin", Some(50)), Ok("builds/other/".into()));
        assert_eq!(c.policy("wheels", "a/x-1.whl", Some(50)), Ok("wheels/a/".into()));
        assert_eq!(c.policy("wheels", "pkg-1.tar", None), Ok("wheels/".into()));
        assert_eq!(
            c.policy("wheels", "pkg-10.tar", None),
            Err("key matches no allow pattern".into())
        );
        assert_eq!(
            c.policy("wheels", "a/x-dev1.whl", None),
            Err("key matches deny `*-dev*`".into())
        );
        // An explicit allow wins over deny_media.
        assert_eq!(c.policy("media", "a.gz", None), Ok("media/".into()));
        // No rule: `enabled` decides.
        assert_eq!(c.policy("other", "a/b", None), Err("delta not enabled".into()));
    }

    #[test]
    fn rule_parsing_and_validation() {
        let r: DeltaRule = serde_yaml::from_str("{bucket: b, delta: off}").unwrap();
        assert_eq!(r.delta, DeltaSwitch::Off);
        assert!(serde_yaml::from_str::<DeltaRule>("{bucket: b, bogus: 1}").is_err());
        assert!(serde_yaml::from_str::<DeltaConfig>("bogus: 1").is_err());
        let c = cfg(r#"
max_delta_ratio: 1.5
reselect_ratio: 0
reselect_window: 0
level: 40
max_concurrency: 0
rules:
  - { bucket: "Bad_Bucket", allow: [""], group: "" }
"#);
        let mut errs = Vec::new();
        c.validate(&mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "delta.max_delta_ratio",
            "delta.reselect_ratio",
            "delta.reselect_window",
            "delta.level",
            "delta.max_concurrency",
            "delta.rules[0].bucket",
            "delta.rules[0].allow",
            "delta.rules[0].group",
        ] {
            assert!(fields.contains(&f), "{f} missing in {fields:?}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.whl", "a/b/c.whl"));
        assert!(!glob_match("*.whl", "a/b/c.whl.txt"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("ü*", "über"));
    }
}
