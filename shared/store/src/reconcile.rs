//! What the reconciler asks of the catalog: the blob keys it knows on one
//! backend, in byte order, so they can be merged against the backend's own
//! listing (see `workers/src/reconcile.rs`).

/// The strongest reason the catalog has to expect a blob on its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlobUse {
    /// A segment of an object (any copy, delta references included): a blob
    /// missing on its backend is a lost copy.
    Segment,
    /// A part of a multipart upload in progress.
    Part,
    /// Only a pending intent (a write in flight), the cleanup queue or its
    /// dead letters name it: it may legitimately be absent.
    Transient,
}

impl BlobUse {
    /// The rank the queries select (`MIN` of the sources naming a key).
    pub(crate) fn from_rank(rank: i64) -> BlobUse {
        match rank {
            0 => BlobUse::Segment,
            1 => BlobUse::Part,
            _ => BlobUse::Transient,
        }
    }
}

/// One blob key the catalog names on a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBlob {
    pub backend_key: String,
    pub used_as: BlobUse,
}

/// Where a blob may be named, with the rank of its [`BlobUse`]. Each source
/// is read in key order up to the page size, so a page merges at most
/// five pages of one index each.
pub(crate) const SOURCES: [(&str, i64); 5] = [
    ("segments", 0),
    ("parts", 1),
    ("intents", 2),
    ("cleanup_queue", 2),
    ("cleanup_dead_letter", 2),
];

/// The `known_blobs` query for SQLite (`?1` backend, `?2` after, `?3`
/// limit) or PostgreSQL (`$1`..`$3`, byte order through `COLLATE "C"`).
pub(crate) fn known_blobs_sql(pg: bool) -> String {
    let (b, a, l, c) = if pg {
        ("$1", "$2", "$3", " COLLATE \"C\"")
    } else {
        ("?1", "?2", "?3", "")
    };
    let parts: Vec<String> = SOURCES
        .iter()
        .map(|(table, rank)| {
            format!(
                "SELECT * FROM (SELECT DISTINCT backend_key{c} AS k, CAST({rank} AS BIGINT) AS r FROM {table} \
                 WHERE backend_id = {b} AND backend_key{c} > {a} ORDER BY 1 LIMIT {l}) AS s{rank}_{table}"
            )
        })
        .collect();
    format!(
        "SELECT k, MIN(r) FROM ({}) AS u GROUP BY k ORDER BY k{c} LIMIT {l}",
        parts.join(" UNION ALL ")
    )
}

/// Whether any catalog row names the blob (`?1`/`$1` backend, `?2`/`$2` key).
pub(crate) fn is_named_sql(pg: bool) -> String {
    let (b, k) = if pg { ("$1", "$2") } else { ("?1", "?2") };
    let exists: Vec<String> = SOURCES
        .iter()
        .map(|(table, _)| format!("EXISTS (SELECT 1 FROM {table} WHERE backend_id = {b} AND backend_key = {k})"))
        .collect();
    format!("SELECT {}", exists.join(" OR "))
}
