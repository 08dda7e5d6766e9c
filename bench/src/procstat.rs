//! Peak RSS and CPU seconds of server processes, from /proc.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

/// Linux USER_HZ; sysconf(_SC_CLK_TCK) is 100 on every mainstream kernel.
const CLOCK_TICKS: f64 = 100.0;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// What the watched processes used during one run (summed over the PIDs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerUsage {
    pub pids: Vec<u32>,
    /// Highest sum of VmRSS seen, sampled every 100 ms during the run.
    pub peak_rss_mib: f64,
    /// Sum of VmHWM at the end: the peak since each process started, not only this run.
    pub vm_hwm_mib: f64,
    /// utime + stime consumed during the run.
    pub cpu_seconds: f64,
}

impl ServerUsage {
    /// Across rounds: the highest peaks, the total CPU.
    pub fn merge(&mut self, o: &ServerUsage) {
        if self.pids.is_empty() {
            self.pids = o.pids.clone();
        }
        self.peak_rss_mib = self.peak_rss_mib.max(o.peak_rss_mib);
        self.vm_hwm_mib = self.vm_hwm_mib.max(o.vm_hwm_mib);
        self.cpu_seconds += o.cpu_seconds;
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&text)
}

fn parse_stat_ticks(text: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_sum(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&p| status_kib(p, "VmRSS:")).sum()
}

/// Samples the processes on a thread until [`Monitor::finish`].
pub struct Monitor {
    pids: Vec<u32>,
    cpu_start: u64,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Monitor {
    pub fn start(pids: &[u32]) -> anyhow::Result<Monitor> {
        for &p in pids {
            if cpu_ticks(p).is_none() {
                anyhow::bail!("--pid {p}: no such process (cannot read /proc/{p}/stat)");
            }
        }
        let pids = pids.to_vec();
        let cpu_start = pids.iter().filter_map(|&p| cpu_ticks(p)).sum();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, ps) = (stop.clone(), pids.clone());
        let thread = std::thread::spawn(move || {
            let mut peak = rss_sum(&ps);
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(SAMPLE_EVERY);
                peak = peak.max(rss_sum(&ps));
            }
            peak
        });
        Ok(Monitor {
            pids,
            cpu_start,
            stop,
            thread,
        })
    }

    pub fn finish(self) -> ServerUsage {
        let cpu_end: u64 = self.pids.iter().filter_map(|&p| cpu_ticks(p)).sum();
        self.stop.store(true, Ordering::Relaxed);
        let peak_kib = self.thread.join().unwrap_or(0).max(rss_sum(&self.pids));
        let hwm: u64 = self.pids.iter().filter_map(|&p| status_kib(p, "VmHWM:")).sum();
        ServerUsage {
            pids: self.pids,
            peak_rss_mib: peak_kib as f64 / 1024.0,
            vm_hwm_mib: hwm as f64 / 1024.0,
            cpu_seconds: cpu_end.saturating_sub(self.cpu_start) as f64 / CLOCK_TICKS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_name() {
        let line = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_stat_ticks(line), Some(300));
    }

    #[test]
    fn own_process() {
        let me = std::process::id();
        let m = Monitor::start(&[me]).unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let u = m.finish();
        assert!(u.peak_rss_mib > 0.0);
        assert!(u.vm_hwm_mib >= u.peak_rss_mib * 0.5);
        assert!(u.cpu_seconds >= 0.0);
        assert!(Monitor::start(&[u32::MAX - 1]).is_err());
    }
}
