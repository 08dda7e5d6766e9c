//! The rebalance job (off by default): moves object copies between backends
//! so that they end up spread evenly or packed in configuration order, and
//! the schedules of the drain and over-replication cleanup jobs.

use serde::Deserialize;

use super::ConfigError;

/// Where rebalance moves copies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebalanceStrategy {
    /// From the fullest backend to the emptiest, until their fill differs
    /// by at most `threshold_percent`.
    #[default]
    Spread,
    /// Toward the first backends in configuration order: copies on later
    /// backends move to the first one with room.
    Pack,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RebalanceConfig {
    /// Runs the rebalance job. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// `spread` (default) or `pack`.
    #[serde(default)]
    pub strategy: RebalanceStrategy,
    /// Objects moved at the same time. Default 2.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Objects moved per cycle at most. Default 64.
    #[serde(default = "default_moves")]
    pub moves_per_cycle: u32,
    /// Spread stops when the fullest and the emptiest backend differ by at
    /// most this percentage of the fullest one's fill (bytes, or the share
    /// of the quota when both have one). Default 10.
    #[serde(default = "default_threshold")]
    pub threshold_percent: u32,
    /// Seconds between rebalance cycles when balanced. Default 60.
    #[serde(default = "default_period")]
    pub period_secs: u64,
    /// Seconds between drain cycles when idle (moves off backends that
    /// `strata backends drain` marked). Default 5.
    #[serde(default = "default_drain_period")]
    pub drain_period_secs: u64,
    /// Objects the drain moves at the same time. Default 4.
    #[serde(default = "default_drain_concurrency")]
    pub drain_concurrency: usize,
    /// Seconds between over-replication cleanup cycles (surplus copies
    /// above `replication.factor` are removed). Default 30.
    #[serde(default = "default_overrep_period")]
    pub overreplication_period_secs: u64,
}

fn default_concurrency() -> usize {
    2
}
fn default_moves() -> u32 {
    64
}
fn default_threshold() -> u32 {
    10
}
fn default_period() -> u64 {
    60
}
fn default_drain_period() -> u64 {
    5
}
fn default_drain_concurrency() -> usize {
    4
}
fn default_overrep_period() -> u64 {
    30
}

impl Default for RebalanceConfig {
    fn default() -> Self {
        RebalanceConfig {
            enabled: false,
            strategy: RebalanceStrategy::default(),
            max_concurrency: default_concurrency(),
            moves_per_cycle: default_moves(),
            threshold_percent: default_threshold(),
            period_secs: default_period(),
            drain_period_secs: default_drain_period(),
            drain_concurrency: default_drain_concurrency(),
            overreplication_period_secs: default_overrep_period(),
        }
    }
}

pub(super) fn validate(r: &RebalanceConfig, errs: &mut Vec<ConfigError>) {
    for (name, v) in [
        ("max_concurrency", r.max_concurrency),
        ("drain_concurrency", r.drain_concurrency),
    ] {
        if v == 0 || v > 64 {
            errs.push(ConfigError::new(
                format!("rebalance.{name}"),
                "must be between 1 and 64; 2 to 8 is usual",
            ));
        }
    }
    for (name, v) in [
        ("period_secs", r.period_secs),
        ("drain_period_secs", r.drain_period_secs),
        ("overreplication_period_secs", r.overreplication_period_secs),
    ] {
        if v == 0 {
            errs.push(ConfigError::new(
                format!("rebalance.{name}"),
                "must be at least 1 second",
            ));
        }
    }
    if r.moves_per_cycle == 0 {
        errs.push(ConfigError::new(
            "rebalance.moves_per_cycle",
            "must be at least 1; 64 is usual",
        ));
    }
    if r.threshold_percent == 0 || r.threshold_percent > 100 {
        errs.push(ConfigError::new(
            "rebalance.threshold_percent",
            "must be between 1 and 100; 10 is usual",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid() {
        let r: RebalanceConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(r, RebalanceConfig::default());
        assert!(!r.enabled);
        let mut errs = Vec::new();
        validate(&r, &mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn bad_values_say_how_to_fix() {
        let r: RebalanceConfig =
            serde_yaml::from_str("{enabled: true, strategy: pack, max_concurrency: 0, threshold_percent: 0}").unwrap();
        assert_eq!(r.strategy, RebalanceStrategy::Pack);
        let mut errs = Vec::new();
        validate(&r, &mut errs);
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2, "{text:?}");
        assert!(text[0].contains("rebalance.max_concurrency"), "{text:?}");
        assert!(serde_yaml::from_str::<RebalanceConfig>("{strategy: random}").is_err());
        assert!(serde_yaml::from_str::<RebalanceConfig>("{nope: 1}").is_err());
    }
}
