//! Placement: which backend a new object (or part) is written to.
//!
//! A backend is *eligible* for an object of `size_hint` bytes when
//! - its `limits.max_object_size` is unset or at least `size_hint`, and
//! - its `limits.quota_bytes` is unset, or `bytes_used + orphan_bytes +
//!   reserved_bytes + size_hint <= quota_bytes`. Orphan bytes (queued for
//!   cleanup) still occupy the backend until they are deleted, and reserved
//!   bytes are being written right now. With an unknown size, at least one byte
//!   must be free.
//!
//! Among the eligible backends (restricted to the bucket's pin list, if any,
//! kept in configuration order):
//! - `pack` takes the first in configuration order: one backend fills up before
//!   the next is used.
//! - `spread` takes the lowest fill ratio `(used + orphan + reserved) / quota`.
//!   A backend without a quota counts as 0 % full, so unlimited backends are
//!   preferred over limited ones. Ties (e.g. all unlimited, or equally full)
//!   go to the fewest filled bytes, then to configuration order.
//!
//! A backend whose monthly `api_request_limit` or `ingress_byte_limit` is used
//! up (by the data planes' usage reports) is skipped too, so writes overflow to
//! the next backend until the month ends.
//!
//! Usage comes from the store's counters (see `MetaStore::backend_usage`).
//! The choice here reads the counters without a lock; the control plane then
//! records the intent with `MetaStore::reserve_intent`, which re-checks the
//! quota in the same write transaction, and chooses again without that backend
//! if it filled up meanwhile. Concurrent planners never overshoot a quota.

use std::collections::HashMap;
use std::fmt::Write as _;

use strata_core::config::{BackendConfig, BackendLimits, PlacementConfig, RoutingStrategy};
use strata_core::{CpError, CpResult, MonthlyUsage};
use strata_store::BackendUsage;

/// One configured backend, as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementBackend {
    pub id: String,
    pub limits: BackendLimits,
}

/// The configured backends (in configuration order) and the placement policy.
#[derive(Debug, Clone)]
pub struct Placement {
    backends: Vec<PlacementBackend>,
    config: PlacementConfig,
}

impl Placement {
    pub fn new(backends: &[BackendConfig], config: PlacementConfig) -> Placement {
        Placement {
            backends: backends
                .iter()
                .map(|b| PlacementBackend {
                    id: b.id().to_owned(),
                    limits: b.limits().clone(),
                })
                .collect(),
            config,
        }
    }

    pub fn backends(&self) -> &[PlacementBackend] {
        &self.backends
    }

    /// The configured quota of backend `id`, if any.
    pub fn quota_of(&self, id: &str) -> Option<u64> {
        (self.backends.iter())
            .find(|b| b.id == id)
            .and_then(|b| b.limits.quota_bytes)
    }

    /// Chooses the backend for a new object of `bucket` given the current
    /// `usage` and this month's traffic (`monthly`), or explains in
    /// `NoCapacity` why every candidate was skipped.
    pub fn choose(
        &self,
        bucket: &str,
        size_hint: Option<u64>,
        usage: &[BackendUsage],
        monthly: &[MonthlyUsage],
        exclude: &[String],
    ) -> CpResult<&str> {
        self.choose_active(bucket, size_hint, usage, monthly, exclude, &[])
    }

    /// [`Placement::choose`], never choosing a backend of `inactive`
    /// (draining, drained or removed, with that state as the reason).
    pub fn choose_active(
        &self,
        bucket: &str,
        size_hint: Option<u64>,
        usage: &[BackendUsage],
        monthly: &[MonthlyUsage],
        exclude: &[String],
        inactive: &[(String, &'static str)],
    ) -> CpResult<&str> {
        let pins = self.config.bucket_backends.get(bucket);
        let candidates: Vec<&PlacementBackend> = self
            .backends
            .iter()
            .filter(|b| pins.is_none_or(|p| p.contains(&b.id)))
            .collect();

        if candidates.is_empty() {
            return Err(CpError::NoCapacity(match pins {
                Some(p) => format!(
                    "bucket `{bucket}` is pinned to backends [{}], none of which is configured",
                    p.join(", ")
                ),
                None => "no backend is configured".into(),
            }));
        }
        let by_id: HashMap<&str, &BackendUsage> = usage.iter().map(|u| (u.backend_id.as_str(), u)).collect();
        let month_by_id: HashMap<&str, &MonthlyUsage> = monthly.iter().map(|m| (m.backend_id.as_str(), m)).collect();
        let mut eligible = Vec::with_capacity(candidates.len());
        let mut skipped = Vec::new();
        for (order, b) in candidates.into_iter().enumerate() {
            if let Some((_, state)) = inactive.iter().find(|(id, _)| *id == b.id) {
                skipped.push(format!("{}: {state} (see `strata backends list`)", b.id));
                continue;
            }
            if exclude.contains(&b.id) {
                skipped.push(format!(
                    "{}: unavailable (circuit breaker open or a write just failed)",
                    b.id
                ));
                continue;
            }
            let filled = by_id.get(b.id.as_str()).map_or(0, |u| {
                u.bytes_used
                    .saturating_add(u.orphan_bytes)
                    .saturating_add(u.reserved_bytes)
            });
            if let Some(why) = month_by_id
                .get(b.id.as_str())
                .and_then(|m| monthly_skip_reason(&b.limits, m))
            {
                skipped.push(format!("{}: {why}", b.id));
                continue;
            }
            match skip_reason(&b.limits, filled, size_hint) {
                Some(why) => skipped.push(format!("{}: {why}", b.id)),
                None => eligible.push((order, b, filled)),
            }
        }
        let chosen = match self.config.routing_strategy {
            RoutingStrategy::Pack => eligible.first(),
            RoutingStrategy::Spread => eligible.iter().min_by(|(oa, a, fa), (ob, b, fb)| {
                fill_ratio(&a.limits, *fa)
                    .total_cmp(&fill_ratio(&b.limits, *fb))
                    .then(fa.cmp(fb))
                    .then(oa.cmp(ob))
            }),
        };
        if let Some((_, b, _)) = chosen {
            return Ok(&b.id);
        }
        let mut msg = match size_hint {
            Some(n) => format!("no backend has room for an object of {n} bytes"),
            None => "no backend has room for an object of unknown size".to_owned(),
        };
        if let Some(p) = pins {
            let _ = write!(msg, " in bucket `{bucket}` (pinned to {})", p.join(", "));
        }
        let _ = write!(msg, "; skipped {}", skipped.join("; "));
        Err(CpError::NoCapacity(msg))
    }
}

/// Why a backend with `filled` bytes cannot take `size_hint` more, if it cannot.
fn skip_reason(limits: &BackendLimits, filled: u64, size_hint: Option<u64>) -> Option<String> {
    if let (Some(max), Some(size)) = (limits.max_object_size, size_hint)
        && size > max
    {
        return Some(format!("object larger than max_object_size {max}"));
    }
    let quota = limits.quota_bytes?;
    let need = size_hint.unwrap_or(1);
    if filled.saturating_add(need) > quota {
        let free = quota.saturating_sub(filled);
        return Some(format!(
            "quota_bytes {quota} with {filled} used, orphaned or reserved leaves {free} free"
        ));
    }
    None
}

/// Why a backend cannot take writes this month, if a monthly limit that
/// writes consume (API requests or ingress bytes) is used up.
pub fn monthly_skip_reason(limits: &BackendLimits, m: &MonthlyUsage) -> Option<String> {
    if let Some(limit) = limits.api_request_limit
        && m.requests >= limit
    {
        return Some(format!(
            "api_request_limit {limit} reached this month ({} requests in {})",
            m.requests, m.month
        ));
    }
    if let Some(limit) = limits.ingress_byte_limit
        && m.ingress_bytes >= limit
    {
        return Some(format!(
            "ingress_byte_limit {limit} reached this month ({} bytes in {})",
            m.ingress_bytes, m.month
        ));
    }
    None
}

/// `filled / quota`; 0 for a backend without a quota.
fn fill_ratio(limits: &BackendLimits, filled: u64) -> f64 {
    match limits.quota_bytes {
        Some(q) if q > 0 => filled as f64 / q as f64,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn backend(id: &str, quota: Option<u64>, max: Option<u64>) -> BackendConfig {
        BackendConfig::Local {
            encryption: None,
            id: id.into(),
            path: format!("/tmp/{id}").into(),
            limits: BackendLimits {
                quota_bytes: quota,
                max_object_size: max,
                ..BackendLimits::default()
            },
        }
    }

    fn placement(strategy: RoutingStrategy, backends: &[BackendConfig], pins: &[(&str, &[&str])]) -> Placement {
        let bucket_backends: BTreeMap<String, Vec<String>> = pins
            .iter()
            .map(|(b, ids)| ((*b).to_owned(), ids.iter().map(|s| (*s).to_owned()).collect()))
            .collect();
        Placement::new(
            backends,
            PlacementConfig {
                routing_strategy: strategy,
                bucket_backends,
            },
        )
    }

    fn used(id: &str, used: u64) -> BackendUsage {
        BackendUsage {
            backend_id: id.into(),
            bytes_used: used,
            ..BackendUsage::default()
        }
    }

    fn three(quota: Option<u64>) -> Vec<BackendConfig> {
        vec![
            backend("a", quota, None),
            backend("b", quota, None),
            backend("c", quota, None),
        ]
    }

    /// Simulates `n` sequential writes of `size` bytes and returns where each went.
    fn simulate(p: &Placement, bucket: &str, size: u64, n: usize) -> Vec<String> {
        let mut usage: Vec<BackendUsage> = Vec::new();
        (0..n)
            .map(|_| {
                let id = p.choose(bucket, Some(size), &usage, &[], &[]).unwrap().to_owned();
                match usage.iter_mut().find(|u| u.backend_id == id) {
                    Some(u) => u.bytes_used += size,
                    None => usage.push(used(&id, size)),
                }
                id
            })
            .collect()
    }

    #[test]
    fn pack_fills_in_config_order_then_overflows() {
        let p = placement(RoutingStrategy::Pack, &three(Some(300)), &[]);
        let got = simulate(&p, "x", 100, 9);
        assert_eq!(got, ["a", "a", "a", "b", "b", "b", "c", "c", "c"]);
        // Unlimited backends are never full.
        let p = placement(RoutingStrategy::Pack, &three(None), &[]);
        assert_eq!(simulate(&p, "x", 1 << 40, 4), ["a", "a", "a", "a"]);
    }

    #[test]
    fn pack_counts_orphan_and_reserved_bytes() {
        let p = placement(RoutingStrategy::Pack, &three(Some(300)), &[]);
        let mut u = used("a", 100);
        u.orphan_bytes = 100;
        u.reserved_bytes = 50;
        assert_eq!(
            p.choose("x", Some(50), std::slice::from_ref(&u), &[], &[]).unwrap(),
            "a"
        );
        assert_eq!(
            p.choose("x", Some(51), std::slice::from_ref(&u), &[], &[]).unwrap(),
            "b"
        );
        // Unknown size: one free byte is enough.
        u.reserved_bytes = 99;
        assert_eq!(p.choose("x", None, std::slice::from_ref(&u), &[], &[]).unwrap(), "a");
        u.reserved_bytes = 100;
        assert_eq!(p.choose("x", None, std::slice::from_ref(&u), &[], &[]).unwrap(), "b");
    }

    #[test]
    fn spread_balances_by_fill_ratio() {
        let p = placement(RoutingStrategy::Spread, &three(Some(300)), &[]);
        let got = simulate(&p, "x", 100, 6);
        let count = |id: &str| got.iter().filter(|g| *g == id).count();
        assert_eq!((count("a"), count("b"), count("c")), (2, 2, 2), "{got:?}");
        // Ratio, not bytes: a 25 % full big backend beats a 50 % full small one.
        let backends = [backend("small", Some(100), None), backend("big", Some(1000), None)];
        let p = placement(RoutingStrategy::Spread, &backends, &[]);
        let usage = [used("small", 50), used("big", 250)];
        assert_eq!(p.choose("x", Some(1), &usage, &[], &[]).unwrap(), "big");
        // Without quotas, the fewest bytes wins; ties go to config order.
        let p = placement(RoutingStrategy::Spread, &three(None), &[]);
        assert_eq!(
            p.choose("x", Some(1), &[used("a", 5), used("b", 3)], &[], &[]).unwrap(),
            "c"
        );
        assert_eq!(p.choose("x", Some(1), &[], &[], &[]).unwrap(), "a");
        assert_eq!(simulate(&p, "x", 10, 6), ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn pinned_buckets_use_only_their_backends() {
        let p = placement(RoutingStrategy::Pack, &three(Some(300)), &[("photos", &["c", "b"])]);
        // Config order among the pinned ones: b before c.
        assert_eq!(simulate(&p, "photos", 100, 6), ["b", "b", "b", "c", "c", "c"]);
        assert_eq!(simulate(&p, "other", 100, 1), ["a"]);
        let full = [used("b", 300), used("c", 300)];
        let e = p.choose("photos", Some(1), &full, &[], &[]).unwrap_err();
        let CpError::NoCapacity(msg) = e else { panic!("{e:?}") };
        assert!(msg.contains("bucket `photos` (pinned to c, b)"), "{msg}");
        assert!(!msg.contains("a:"), "{msg}");
        let p = placement(RoutingStrategy::Pack, &three(None), &[("photos", &["gone"])]);
        assert!(
            matches!(p.choose("photos", None, &[], &[], &[]), Err(CpError::NoCapacity(m)) if m.contains("none of which"))
        );
    }

    #[test]
    fn too_large_objects_skip_small_backends() {
        let backends = [backend("tiny", None, Some(10)), backend("roomy", None, None)];
        let p = placement(RoutingStrategy::Pack, &backends, &[]);
        assert_eq!(p.choose("x", Some(10), &[], &[], &[]).unwrap(), "tiny");
        assert_eq!(p.choose("x", Some(11), &[], &[], &[]).unwrap(), "roomy");
        // Unknown size cannot be checked against max_object_size.
        assert_eq!(p.choose("x", None, &[], &[], &[]).unwrap(), "tiny");
    }

    #[test]
    fn all_full_explains_every_skip() {
        let backends = [
            backend("a", Some(300), None),
            backend("b", None, Some(50)),
            backend("c", Some(300), None),
        ];
        let p = placement(RoutingStrategy::Spread, &backends, &[]);
        let mut c = used("c", 200);
        c.orphan_bytes = 50;
        c.reserved_bytes = 10;
        let e = p.choose("x", Some(100), &[used("a", 300), c], &[], &[]).unwrap_err();
        let CpError::NoCapacity(msg) = e else { panic!("{e:?}") };
        assert!(
            msg.starts_with("no backend has room for an object of 100 bytes"),
            "{msg}"
        );
        assert!(
            msg.contains("a: quota_bytes 300 with 300 used, orphaned or reserved leaves 0 free"),
            "{msg}"
        );
        assert!(msg.contains("b: object larger than max_object_size 50"), "{msg}");
        assert!(
            msg.contains("c: quota_bytes 300 with 260 used, orphaned or reserved leaves 40 free"),
            "{msg}"
        );
        let p = placement(RoutingStrategy::Pack, &[], &[]);
        assert_eq!(
            p.choose("x", None, &[], &[], &[]),
            Err(CpError::NoCapacity("no backend is configured".into()))
        );
    }

    fn month(id: &str, requests: u64, ingress: u64) -> MonthlyUsage {
        MonthlyUsage {
            backend_id: id.into(),
            month: "2026-11".into(),
            requests,
            ingress_bytes: ingress,
            ..MonthlyUsage::default()
        }
    }

    fn limited(id: &str, requests: Option<u64>, ingress: Option<u64>) -> BackendConfig {
        BackendConfig::Local {
            encryption: None,
            id: id.into(),
            path: format!("/tmp/{id}").into(),
            limits: BackendLimits {
                api_request_limit: requests,
                ingress_byte_limit: ingress,
                egress_byte_limit: Some(1),
                ..BackendLimits::default()
            },
        }
    }

    #[test]
    fn monthly_limits_overflow_to_the_next_backend() {
        let backends = [
            limited("a", Some(10), None),
            limited("b", None, Some(100)),
            backend("c", None, None),
        ];
        let p = placement(RoutingStrategy::Pack, &backends, &[]);
        assert_eq!(p.choose("x", Some(1), &[], &[month("a", 9, 0)], &[]).unwrap(), "a");
        assert_eq!(p.choose("x", Some(1), &[], &[month("a", 10, 0)], &[]).unwrap(), "b");
        let both = [month("a", 10, 0), month("b", 0, 100)];
        assert_eq!(p.choose("x", Some(1), &[], &both, &[]).unwrap(), "c");
        // An exhausted egress limit does not stop writes.
        let egress = MonthlyUsage {
            egress_bytes: 5,
            ..month("a", 0, 0)
        };
        assert_eq!(p.choose("x", Some(1), &[], &[egress], &[]).unwrap(), "a");
        let p = placement(RoutingStrategy::Pack, &backends[..2], &[]);
        let e = p.choose("x", Some(1), &[], &both, &[]).unwrap_err();
        let CpError::NoCapacity(msg) = e else { panic!("{e:?}") };
        assert!(
            msg.contains("a: api_request_limit 10 reached this month (10 requests in 2026-11)"),
            "{msg}"
        );
        assert!(
            msg.contains("b: ingress_byte_limit 100 reached this month (100 bytes in 2026-11)"),
            "{msg}"
        );
        // Spread skips exhausted backends too.
        let p = placement(RoutingStrategy::Spread, &backends, &[]);
        assert_eq!(p.choose("x", Some(1), &[], &[month("a", 10, 0)], &[]).unwrap(), "b");
    }

    #[test]
    fn inactive_backends_are_never_chosen() {
        let p = placement(RoutingStrategy::Spread, &three(None), &[]);
        let inactive = [("a".to_owned(), "draining"), ("b".to_owned(), "removed")];
        assert_eq!(p.choose_active("x", Some(1), &[], &[], &[], &inactive).unwrap(), "c");
        let e = p
            .choose_active("x", Some(1), &[], &[], &["c".into()], &inactive)
            .unwrap_err();
        let CpError::NoCapacity(msg) = e else { panic!("{e:?}") };
        assert!(msg.contains("a: draining (see `strata backends list`)"), "{msg}");
        assert!(msg.contains("b: removed"), "{msg}");
        let p = placement(RoutingStrategy::Pack, &three(None), &[]);
        assert_eq!(p.choose_active("x", None, &[], &[], &[], &inactive[..1]).unwrap(), "b");
    }
}
