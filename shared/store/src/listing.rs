//! Object listing shared by every store: prefix, delimiter grouping and
//! paging, scanned in bounded batches in key (UTF-8 byte) order. Each store
//! only supplies the query for one batch.

use strata_core::{CpError, CpResult, ListEntry, ListPage, ListQuery};

/// One listed row: (key, size, etag, last_modified_ms).
pub(crate) type Row = (String, i64, String, i64);

/// Rows fetched per statement.
const BATCH: u32 = 1000;

/// The smallest string greater than every string that starts with `prefix`, or
/// `None` when no such string exists (empty prefix, or only U+10FFFF). UTF-8
/// byte order equals code point order, so incrementing the last code point
/// that can be incremented (and dropping what follows) gives the bound.
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
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
pub(crate) enum Lower {
    /// Keys strictly greater than this.
    After(String),
    /// Keys greater than or equal to this.
    From(String),
}

/// The common prefix that `key` rolls up into, if any.
pub(crate) fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    key.get(..prefix.len() + at + delimiter.len())
}

/// A listing in progress. The store asks [`Scan::next_batch`] which rows to
/// fetch next, hands them to [`Scan::feed`], and repeats until there is
/// nothing more to fetch; then [`Scan::finish`] gives the page.
pub(crate) struct Scan<'q> {
    query: &'q ListQuery,
    page: ListPage,
    count: u32,
    upper: Option<String>,
    limit: u32,
    /// Where the next batch starts; `None` when the page is complete.
    lower: Option<Lower>,
}

impl<'q> Scan<'q> {
    pub(crate) fn new(query: &'q ListQuery) -> Scan<'q> {
        let (prefix, delimiter, after) = (&query.prefix, &query.delimiter, &query.after);
        let lower = if query.max_keys == 0 {
            None
        } else if prefix.as_str() > after.as_str() {
            Some(Lower::From(prefix.clone()))
        } else if let Some(cp) = common_prefix(after, prefix, delimiter) {
            // Every key after `after` under its common prefix rolls up into that
            // prefix, which is not greater than `after`: start past all of them.
            prefix_successor(cp).map(Lower::From)
        } else {
            Some(Lower::After(after.clone()))
        };
        Scan {
            query,
            page: ListPage::default(),
            count: 0,
            upper: prefix_successor(prefix),
            limit: BATCH.min(query.max_keys.saturating_add(1)),
            lower,
        }
    }

    /// The next batch to fetch: keys from `lower`, below `upper`, at most `limit`.
    pub(crate) fn next_batch(&self) -> Option<(&Lower, Option<&str>, u32)> {
        let lower = self.lower.as_ref()?;
        Some((lower, self.upper.as_deref(), self.limit))
    }

    /// Takes one fetched batch (in key order) and decides where the next starts.
    pub(crate) fn feed(&mut self, rows: Vec<Row>) -> CpResult<()> {
        let query = self.query;
        let (prefix, delimiter, after) = (&query.prefix, &query.delimiter, &query.after);
        let full = rows.len() as u64 >= u64::from(self.limit);
        self.lower = None;
        // The common prefix whose keys the scan is skipping, if any.
        let mut skipping: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (key, size, etag, last_modified_ms) in rows {
            if !key.starts_with(prefix.as_str()) {
                // Past the prefix range (only reachable without an upper bound).
                return Ok(());
            }
            if skipping.as_deref().is_some_and(|cp| key.starts_with(cp)) {
                last_key = Some(key);
                continue;
            }
            skipping = None;
            if let Some(cp) = common_prefix(&key, prefix, delimiter) {
                let cp = cp.to_owned();
                if cp.as_str() > after.as_str() {
                    if self.count == query.max_keys {
                        self.page.is_truncated = true;
                        return Ok(());
                    }
                    self.count += 1;
                    self.page.next_after.clone_from(&cp);
                    self.page.common_prefixes.push(cp.clone());
                }
                skipping = Some(cp);
            } else {
                if self.count == query.max_keys {
                    self.page.is_truncated = true;
                    return Ok(());
                }
                self.count += 1;
                self.page.next_after.clone_from(&key);
                self.page.objects.push(ListEntry {
                    key: key.clone(),
                    size: u64::try_from(size)
                        .map_err(|_| CpError::Internal(format!("stored size {size} is negative")))?,
                    etag,
                    last_modified_unix_ms: last_modified_ms,
                });
            }
            last_key = Some(key);
        }
        if full {
            self.lower = match (skipping, last_key) {
                // Jump past every key under the common prefix being skipped.
                (Some(cp), _) => prefix_successor(&cp).map(Lower::From),
                (None, Some(key)) => Some(Lower::After(key)),
                (None, None) => None,
            };
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> ListPage {
        self.page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_the_prefix_range() {
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a"), Some("b".into()));
        assert_eq!(prefix_successor("a/"), Some("a0".into()));
        assert_eq!(prefix_successor("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_successor("x\u{D7FF}"), Some("x\u{E000}".into()));
        assert_eq!(prefix_successor("ü"), Some("ý".into()));
    }

    #[test]
    fn common_prefix_uses_the_first_delimiter_after_the_prefix() {
        assert_eq!(common_prefix("a/b/c", "", "/"), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", "/"), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", "/"), None);
        assert_eq!(common_prefix("a//x", "a/", "/"), Some("a//"));
        assert_eq!(common_prefix("a--b--c", "a", "--"), Some("a--"));
        assert_eq!(common_prefix("abc", "", ""), None);
    }
}
