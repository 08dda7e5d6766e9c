//! Object listing: prefix, delimiter grouping and paging, scanned in bounded
//! batches in key (UTF-8 byte) order.

use sqlx::PgConnection;
use strata_core::{CpResult, ListEntry, ListPage, ListQuery};

use super::rows::{require_bucket, to_u64};
use super::{PgStore, db};

/// Rows fetched per statement.
const BATCH: u32 = 1000;

/// The smallest string greater than every string that starts with `prefix`, or
/// `None` when no such string exists (empty prefix, or only U+10FFFF). UTF-8
/// byte order equals code point order, so incrementing the last code point
/// that can be incremented (and dropping what follows) gives the bound.
pub(super) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            char::MAX => continue,
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Where the next batch starts.
enum Lower {
    /// Keys strictly greater than this.
    After(String),
    /// Keys greater than or equal to this.
    From(String),
}

/// One batch of (key, size, etag, last_modified_ms) in `[lower, upper)`.
async fn fetch_batch(
    conn: &mut PgConnection,
    bucket: &str,
    lower: &Lower,
    upper: Option<&str>,
    limit: u32,
) -> CpResult<Vec<(String, i64, String, i64)>> {
    let (op, bound) = match lower {
        Lower::After(k) => (">", k),
        Lower::From(k) => (">=", k),
    };
    let (upper_clause, limit_at) = if upper.is_some() { (" AND key < $3", 4) } else { ("", 3) };
    let sql = format!(
        "SELECT key, size, etag, last_modified_ms FROM objects \
         WHERE bucket = $1 AND key {op} $2{upper_clause} ORDER BY key LIMIT ${limit_at}"
    );
    let mut q = sqlx::query_as(&sql).bind(bucket).bind(bound.as_str());
    if let Some(upper) = upper {
        q = q.bind(upper);
    }
    q.bind(i64::from(limit)).fetch_all(conn).await.map_err(db)
}

/// The common prefix that `key` rolls up into, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    key.get(..prefix.len() + at + delimiter.len())
}

impl PgStore {
    pub(super) async fn list_objects_impl(&self, query: &ListQuery) -> CpResult<ListPage> {
        let mut tx = self.read_tx().await?;
        require_bucket(&mut tx, &query.bucket).await?;
        let page = scan(&mut tx, query).await?;
        tx.commit().await.map_err(db)?;
        Ok(page)
    }
}

async fn scan(conn: &mut PgConnection, query: &ListQuery) -> CpResult<ListPage> {
    let mut page = ListPage::default();
    if query.max_keys == 0 {
        return Ok(page);
    }
    let (prefix, delimiter, after) = (&query.prefix, &query.delimiter, &query.after);
    let upper = prefix_successor(prefix);
    let mut lower = if prefix.as_str() > after.as_str() {
        Lower::From(prefix.clone())
    } else if let Some(cp) = common_prefix(after, prefix, delimiter) {
        // Every key after `after` under its common prefix rolls up into that
        // prefix, which is not greater than `after`: start past all of them.
        match prefix_successor(cp) {
            Some(next) => Lower::From(next),
            None => return Ok(page),
        }
    } else {
        Lower::After(after.clone())
    };
    let limit = BATCH.min(query.max_keys.saturating_add(1));
    let mut count: u32 = 0;
    loop {
        let rows = fetch_batch(conn, &query.bucket, &lower, upper.as_deref(), limit).await?;
        let full = rows.len() as u64 >= u64::from(limit);
        // The common prefix whose keys the scan is skipping, if any.
        let mut skipping: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (key, size, etag, last_modified_ms) in rows {
            if !key.starts_with(prefix.as_str()) {
                // Past the prefix range (only reachable without an upper bound).
                return Ok(page);
            }
            if skipping.as_deref().is_some_and(|cp| key.starts_with(cp)) {
                last_key = Some(key);
                continue;
            }
            skipping = None;
            if let Some(cp) = common_prefix(&key, prefix, delimiter) {
                let cp = cp.to_owned();
                if cp.as_str() > after.as_str() {
                    if count == query.max_keys {
                        page.is_truncated = true;
                        return Ok(page);
                    }
                    count += 1;
                    page.next_after.clone_from(&cp);
                    page.common_prefixes.push(cp.clone());
                }
                skipping = Some(cp);
            } else {
                if count == query.max_keys {
                    page.is_truncated = true;
                    return Ok(page);
                }
                count += 1;
                page.next_after.clone_from(&key);
                page.objects.push(ListEntry {
                    key: key.clone(),
                    size: to_u64(size)?,
                    etag,
                    last_modified_unix_ms: last_modified_ms,
                });
            }
            last_key = Some(key);
        }
        if !full {
            return Ok(page);
        }
        lower = match (skipping, last_key) {
            // Jump past every key under the common prefix being skipped.
            (Some(cp), _) => match prefix_successor(&cp) {
                Some(next) => Lower::From(next),
                None => return Ok(page),
            },
            (None, Some(key)) => Lower::After(key),
            (None, None) => return Ok(page),
        };
    }
}
