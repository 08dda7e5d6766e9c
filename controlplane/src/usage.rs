//! Monthly usage and the breaker view: what the data planes report, turned
//! into per-backend exhaustion flags and one breaker state per backend.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strata_core::{BreakerState, MonthlyUsage, UsageReport};

use crate::placement::PlacementBackend;

/// How long a reporter's breaker state counts when it stops reporting.
pub const DEFAULT_BREAKER_WINDOW: Duration = Duration::from_secs(30);

/// The calendar month (`YYYY-MM`, UTC) of a Unix time in seconds.
pub fn month_of(unix_secs: u64) -> String {
    // Civil-from-days (H. Hinnant), for days since 1970-01-01.
    let days = (unix_secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

/// The current calendar month, UTC.
pub fn current_month() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    month_of(secs)
}

/// One entry per configured backend (configuration order) for `month`, with
/// the exhausted flags set from the backend's limits.
pub fn with_limits(month: &str, totals: &[MonthlyUsage], backends: &[PlacementBackend]) -> Vec<MonthlyUsage> {
    backends
        .iter()
        .map(|b| {
            let mut m = totals
                .iter()
                .find(|t| t.backend_id == b.id)
                .cloned()
                .unwrap_or_else(|| MonthlyUsage {
                    backend_id: b.id.clone(),
                    ..MonthlyUsage::default()
                });
            m.month = month.to_owned();
            let over = |used: u64, limit: Option<u64>| limit.is_some_and(|l| used >= l);
            m.requests_exhausted = over(m.requests, b.limits.api_request_limit);
            m.egress_exhausted = over(m.egress_bytes, b.limits.egress_byte_limit);
            m.ingress_exhausted = over(m.ingress_bytes, b.limits.ingress_byte_limit);
            m
        })
        .collect()
}

/// The last breaker state each reporter gave for each backend.
#[derive(Debug)]
pub struct BreakerView {
    window: Duration,
    seen: Mutex<HashMap<(String, String), (BreakerState, Instant)>>,
}

impl BreakerView {
    /// Reports older than `window` no longer count.
    pub fn new(window: Duration) -> BreakerView {
        BreakerView {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records the breaker states of one report.
    pub fn record(&self, report: &UsageReport, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for b in &report.backends {
            seen.insert((report.reporter.clone(), b.backend_id.clone()), (b.breaker, now));
        }
        let window = self.window;
        seen.retain(|_, (_, at)| now.saturating_duration_since(*at) <= window * 4);
    }

    /// `open` if any recent reporter has it open, else `half_open` if any has,
    /// else `closed`; `unknown` without a recent report.
    pub fn state(&self, backend_id: &str, now: Instant) -> &'static str {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let recent: Vec<BreakerState> = seen
            .iter()
            .filter(|((_, b), (_, at))| b == backend_id && now.saturating_duration_since(*at) <= self.window)
            .map(|(_, (s, _))| *s)
            .collect();
        if recent.is_empty() {
            "unknown"
        } else if recent.contains(&BreakerState::Open) {
            BreakerState::Open.as_str()
        } else if recent.contains(&BreakerState::HalfOpen) {
            BreakerState::HalfOpen.as_str()
        } else {
            BreakerState::Closed.as_str()
        }
    }
}

#[cfg(test)]
mod tests {
    use strata_core::BackendTraffic;
    use strata_core::config::BackendLimits;

    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(951_782_400), "2000-02"); // 2000-02-29T00:00:00Z
        assert_eq!(month_of(1_798_761_599), "2026-12"); // 2026-12-31T23:59:59Z
        assert_eq!(month_of(1_798_761_600), "2027-01");
        assert_eq!(current_month().len(), 7);
    }

    fn backend(id: &str, requests: Option<u64>, egress: Option<u64>) -> PlacementBackend {
        PlacementBackend {
            id: id.into(),
            limits: BackendLimits {
                api_request_limit: requests,
                egress_byte_limit: egress,
                ..BackendLimits::default()
            },
        }
    }

    #[test]
    fn limits_set_the_exhausted_flags() {
        let totals = [MonthlyUsage {
            backend_id: "a".into(),
            requests: 10,
            egress_bytes: 5,
            ..MonthlyUsage::default()
        }];
        let got = with_limits(
            "2026-11",
            &totals,
            &[backend("a", Some(10), Some(6)), backend("b", Some(1), None)],
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].requests_exhausted && !got[0].egress_exhausted && !got[0].ingress_exhausted);
        assert_eq!((got[1].backend_id.as_str(), got[1].month.as_str()), ("b", "2026-11"));
        assert!(!got[1].requests_exhausted, "no traffic yet");
    }

    fn report(reporter: &str, state: BreakerState) -> UsageReport {
        UsageReport {
            reporter: reporter.into(),
            backends: vec![BackendTraffic {
                backend_id: "a".into(),
                breaker: state,
                ..BackendTraffic::default()
            }],
        }
    }

    #[test]
    fn breaker_view_takes_the_worst_recent_state() {
        let v = BreakerView::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(v.state("a", t0), "unknown");
        v.record(&report("p1", BreakerState::Closed), t0);
        assert_eq!(v.state("a", t0), "closed");
        v.record(&report("p2", BreakerState::HalfOpen), t0);
        assert_eq!(v.state("a", t0), "half_open");
        v.record(&report("p3", BreakerState::Open), t0);
        assert_eq!(v.state("a", t0), "open");
        v.record(&report("p3", BreakerState::Closed), t0);
        assert_eq!(v.state("a", t0), "half_open");
        let later = t0 + Duration::from_secs(31);
        assert_eq!(v.state("a", later), "unknown", "stale reports do not count");
        assert_eq!(v.state("b", t0), "unknown");
    }
}
