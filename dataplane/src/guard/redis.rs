//! Pushes the shared usage counters to Redis and reads the shared totals
//! back, one script call per `redis.sync_ms`, behind a circuit breaker (see
//! docs/redis.md and [`super::shared_counters`]).

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use strata_core::config::RedisConfig;

use super::shared_counters::{Applied, Batch, SharedCounters};
use crate::metrics;
use strata_backend::guarded::{Admit, Breaker};

/// Keys live 35 days: a month plus slack for late batches.
const TTL_SECS: u64 = 35 * 24 * 3600;

/// KEYS[1] epoch, KEYS[2] applied sequence per reporter, KEYS[3..] one hash
/// per backend. ARGV: reporter, seq, known epoch, candidate epoch, then six
/// numbers per backend (deltas, then month-to-date totals before the batch).
/// Applies a batch at most once per reporter and sequence; adds the
/// month-to-date totals too when the epoch is new (Redis lost its data).
const SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then cur = ARGV[4]; redis.call('SET', KEYS[1], cur) end
local applied = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
local seq = tonumber(ARGV[2])
local status = 0
if applied < seq then
  local reseed = cur ~= ARGV[3]
  if reseed then status = 2 else status = 1 end
  local fields = {'requests', 'egress', 'ingress'}
  for i = 3, #KEYS do
    local b = 5 + (i - 3) * 6
    for f = 1, 3 do
      local n = tonumber(ARGV[b + f - 1])
      if reseed then n = n + tonumber(ARGV[b + f + 2]) end
      if n > 0 then redis.call('HINCRBY', KEYS[i], fields[f], n) end
    end
    redis.call('EXPIRE', KEYS[i], ARGV[#ARGV])
  end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[#ARGV])
end
local out = {cur, tostring(status)}
for i = 3, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'requests', 'egress', 'ingress')
  for f = 1, 3 do out[#out + 1] = v[f] or '0' end
end
return out
";

/// The script, hashed (SHA-1, for EVALSHA) once rather than on every sync.
static SCRIPT_HANDLE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT));

/// The Redis series of a data plane (process-wide statics in `crate::metrics`).
struct RedisMetrics {
    state: IntGauge,
    errors: IntCounter,
    resyncs: IntCounter,
}

impl RedisMetrics {
    fn new() -> RedisMetrics {
        RedisMetrics {
            state: metrics::REDIS_BREAKER_STATE.clone(),
            errors: metrics::REDIS_ERRORS.clone(),
            resyncs: metrics::USAGE_RESYNCS.clone(),
        }
    }
}

/// The sync loop of one data plane.
pub struct RedisSync {
    counters: Arc<SharedCounters>,
    config: RedisConfig,
    reporter: String,
    client: redis::Client,
    conn: Option<ConnectionManager>,
    breaker: Breaker,
    metrics: RedisMetrics,
    /// A batch failed since the last success: the next success is a re-sync.
    behind: bool,
}

impl RedisSync {
    /// Fails only on a malformed URL (`strata validate` catches most).
    pub(crate) fn new(
        counters: Arc<SharedCounters>,
        config: &RedisConfig,
        reporter: String,
    ) -> Result<RedisSync, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("redis.url: {e}; use redis://HOST:PORT[/DB]"))?;
        Ok(RedisSync {
            counters,
            reporter,
            client,
            conn: None,
            breaker: Breaker::new(config.failure_threshold, Duration::from_secs(config.open_secs)),
            metrics: RedisMetrics::new(),
            config: config.clone(),
            behind: false,
        })
    }

    /// Syncs every `sync_ms` until `shutdown`, then once more.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let period = Duration::from_millis(self.config.sync_ms);
        tracing::info!(reporter = %self.reporter, every_ms = self.config.sync_ms, "shared usage counters in Redis");
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = &mut shutdown => break,
            }
            self.tick().await;
        }
        self.tick().await;
    }

    /// One batch, if the breaker lets it out.
    async fn tick(&mut self) {
        let admit = self.breaker.admit(Instant::now());
        self.metrics.state.set(self.breaker.state(Instant::now()).gauge_value());
        if admit == Admit::No {
            return;
        }
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        let batch = self.counters.next_batch(&month);
        match self.push(&batch).await {
            Ok(answer) => {
                if self.behind || (answer.status == 2 && !batch.known_epoch.is_empty()) {
                    self.metrics.resyncs.inc();
                    tracing::info!(seq = batch.seq, status = answer.status, epoch = %answer.epoch,
                        "shared usage counters re-synced with Redis");
                }
                self.behind = false;
                self.counters.confirm(&batch, &answer);
                if self.breaker.success().is_some() {
                    tracing::info!("redis breaker closed; shared usage counters back in Redis");
                }
            }
            Err(e) => {
                self.behind = true;
                self.metrics.errors.inc();
                tracing::warn!(error = %e, seq = batch.seq, "redis batch failed; counting locally");
                if self.breaker.failure(Instant::now()).is_some() {
                    tracing::warn!(
                        open_secs = self.config.open_secs,
                        "redis breaker opened; limits use the last shared totals plus local counts"
                    );
                }
            }
        }
        self.metrics.state.set(self.breaker.state(Instant::now()).gauge_value());
    }

    async fn connection(&mut self) -> Result<ConnectionManager, String> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(self.config.connect_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(self.config.response_timeout_ms)))
            .set_number_of_retries(1);
        let limit = Duration::from_millis(self.config.connect_timeout_ms.saturating_mul(2));
        let conn = tokio::time::timeout(limit, ConnectionManager::new_with_config(self.client.clone(), cfg))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    async fn push(&mut self, batch: &Batch) -> Result<Applied, String> {
        let mut conn = self.connection().await?;
        let p = &self.config.key_prefix;
        let mut call = SCRIPT_HANDLE.prepare_invoke();
        call.key(format!("{p}epoch")).key(format!("{p}applied"));
        for id in &self.counters.ids {
            call.key(format!("{p}usage:{}:{id}", batch.month));
        }
        let candidate = format!("{:016x}", rand::random::<u64>());
        call.arg(&self.reporter)
            .arg(batch.seq)
            .arg(&batch.known_epoch)
            .arg(candidate);
        for (d, b) in batch.deltas.iter().zip(&batch.before) {
            call.arg(d[0]).arg(d[1]).arg(d[2]).arg(b[0]).arg(b[1]).arg(b[2]);
        }
        call.arg(TTL_SECS);
        let limit = Duration::from_millis(self.config.response_timeout_ms.saturating_mul(2));
        let out: Vec<String> = tokio::time::timeout(limit, call.invoke_async(&mut conn))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        parse(&out, self.counters.ids.len())
    }
}

/// Decodes the script's answer: epoch, status, then three numbers per backend.
fn parse(out: &[String], backends: usize) -> Result<Applied, String> {
    if out.len() != 2 + 3 * backends {
        return Err(format!("unexpected answer of {} values", out.len()));
    }
    let num = |s: &String| s.parse::<u64>().map_err(|e| format!("bad counter `{s}`: {e}"));
    let totals = out[2..]
        .chunks(3)
        .map(|c| Ok([num(&c[0])?, num(&c[1])?, num(&c[2])?]))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Applied {
        epoch: out[0].clone(),
        status: out[1].parse().map_err(|_| format!("bad status `{}`", out[1]))?,
        totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_decoded_and_checked() {
        let out: Vec<String> = ["e1", "2", "5", "6", "7"].map(String::from).to_vec();
        let a = parse(&out, 1).unwrap();
        assert_eq!((a.epoch.as_str(), a.status, a.totals), ("e1", 2, vec![[5, 6, 7]]));
        assert!(parse(&out, 2).is_err());
        let bad: Vec<String> = ["e1", "1", "x", "6", "7"].map(String::from).to_vec();
        assert!(parse(&bad, 1).is_err());
    }
}
