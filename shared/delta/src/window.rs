//! Reference windows: the slice of a reference file a frame is encoded or decoded against.
//!
//! The last whole-reference window read is shared by the encodes and decodes running at the same
//! time against the same reference, so concurrent GETs and PUTs of one deltaspace hold one copy of
//! it, not one each. By default only a weak handle is kept: the window is freed as soon as no
//! encode or decode uses it. [`retain_windows`] lets a server keep it a little longer (a few
//! seconds after its last use, within a byte budget), so that consecutive requests against one
//! deltaspace, the usual pattern of a build pipeline, do not each read the reference again.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::MIB;

/// Largest reference window ever shared between encodes and decodes.
const RETAIN_WINDOW_MAX: u64 = 64 * MIB;

/// Identity of a reference file's contents (the shared slot holds the whole file).
#[derive(Clone, PartialEq, Eq)]
struct WindowKey {
    path: PathBuf,
    dev: u64,
    ino: u64,
    file_len: u64,
    mtime_ns: i128,
}

struct Slot {
    key: WindowKey,
    weak: Weak<Vec<u8>>,
    /// Held after the last user let go, until `last_used + linger`.
    strong: Option<Arc<Vec<u8>>>,
    last_used: Instant,
}

static SLOT: Mutex<Option<Slot>> = Mutex::new(None);
/// Whether the thread that drops an expired strong handle is running (changed under `SLOT`).
static REAPER: AtomicBool = AtomicBool::new(false);
static RETAIN_BYTES: AtomicU64 = AtomicU64::new(0);
static RETAIN_MILLIS: AtomicU64 = AtomicU64::new(0);

/// Keeps the last whole-reference window (of at most `max_bytes`, and never more than 64 MiB) in
/// memory for `linger` after its last use. `max_bytes == 0` or a zero `linger` (the default)
/// frees every window as soon as no encode or decode holds it.
pub fn retain_windows(max_bytes: u64, linger: Duration) {
    RETAIN_BYTES.store(max_bytes.min(RETAIN_WINDOW_MAX), Ordering::Relaxed);
    RETAIN_MILLIS.store(u64::try_from(linger.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

fn linger() -> Option<(u64, Duration)> {
    let (bytes, ms) = (
        RETAIN_BYTES.load(Ordering::Relaxed),
        RETAIN_MILLIS.load(Ordering::Relaxed),
    );
    (bytes > 0 && ms > 0).then(|| (bytes, Duration::from_millis(ms)))
}

fn window_key(m: &std::fs::Metadata, path: &Path) -> WindowKey {
    use std::os::unix::fs::MetadataExt;
    WindowKey {
        path: path.to_owned(),
        dev: m.dev(),
        ino: m.ino(),
        file_len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    }
}

/// Reads `len` bytes at `offset` into `buf` (replacing its contents), without zero-filling it first.
pub(crate) fn read_at(f: &mut std::fs::File, offset: u64, buf: &mut Vec<u8>, len: u64) -> io::Result<()> {
    buf.clear();
    buf.reserve_exact(usize::try_from(len).map_err(|_| io::Error::other("window too large"))?);
    f.seek(SeekFrom::Start(offset))?;
    let n = (&mut *f).take(len).read_to_end(buf)?;
    if n as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read {n} of {len} bytes at offset {offset}"),
        ));
    }
    Ok(())
}

/// The bytes `[start, start+len)` of a reference file: a slice of the shared copy of the whole
/// file when it is at most 64 MiB, else a buffer of its own.
#[derive(Clone)]
pub(crate) struct Window {
    buf: Arc<Vec<u8>>,
    range: std::ops::Range<usize>,
    /// Whether `buf` is the shared copy of the whole reference.
    shared: bool,
}

impl AsRef<[u8]> for Window {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::ops::Deref for Window {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

/// The window `[start, start+len)` of the reference at `path`, replacing `old`. A slice of the
/// shared whole reference is kept while the next is looked up (they are most likely the same
/// buffer); any other window is dropped first, so that at most one is in memory.
pub(crate) fn next_window(
    old: Option<Window>,
    f: &mut std::fs::File,
    path: &Path,
    start: u64,
    len: u64,
) -> io::Result<Window> {
    let keep = old.filter(|w| w.shared);
    let w = window(f, path, start, len)?;
    drop(keep);
    Ok(w)
}

fn window(f: &mut std::fs::File, path: &Path, start: u64, len: u64) -> io::Result<Window> {
    let meta = f.metadata()?;
    let file_len = meta.len();
    let end = start.checked_add(len).filter(|e| *e <= file_len).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("window {start}+{len} beyond the reference's {file_len} bytes"),
        )
    })?;
    if file_len <= RETAIN_WINDOW_MAX {
        return Ok(Window {
            buf: shared_whole(f, path, &meta)?,
            range: start as usize..end as usize,
            shared: true,
        });
    }
    let mut buf = Vec::new();
    read_at(f, start, &mut buf, len)?;
    Ok(Window {
        range: 0..buf.len(),
        buf: Arc::new(buf),
        shared: false,
    })
}

/// The whole reference file, from the shared slot when it holds it.
fn shared_whole(f: &mut std::fs::File, path: &Path, meta: &std::fs::Metadata) -> io::Result<Arc<Vec<u8>>> {
    let (key, len) = (window_key(meta, path), meta.len());
    let keep = linger().filter(|(max, _)| len <= *max);
    {
        let mut slot = SLOT.lock().expect("window slot");
        if let Some(s) = slot.as_mut()
            && s.key == key
            && let Some(w) = s.strong.clone().or_else(|| s.weak.upgrade())
        {
            s.last_used = Instant::now();
            if keep.is_some() && s.strong.is_none() {
                s.strong = Some(w.clone());
                start_reaper();
            }
            return Ok(w);
        }
    }
    let mut buf = Vec::new();
    read_at(f, 0, &mut buf, len)?;
    let w = Arc::new(buf);
    let mut slot = SLOT.lock().expect("window slot");
    *slot = Some(Slot {
        key,
        weak: Arc::downgrade(&w),
        strong: keep.map(|_| w.clone()),
        last_used: Instant::now(),
    });
    if keep.is_some() {
        start_reaper();
    }
    Ok(w)
}

/// Starts the thread that drops a retained window once it expires; called with `SLOT` locked.
fn start_reaper() {
    if REAPER.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new().name("delta-window".into()).spawn(|| {
        loop {
            let wait = linger().map_or(Duration::ZERO, |(_, d)| d);
            std::thread::sleep(wait.clamp(Duration::from_millis(50), Duration::from_secs(1)));
            let mut slot = SLOT.lock().expect("window slot");
            let expired = linger().is_none_or(|(_, d)| slot.as_ref().is_none_or(|s| s.last_used.elapsed() >= d));
            if expired {
                if let Some(s) = slot.as_mut() {
                    s.strong = None;
                }
                REAPER.store(false, Ordering::Release);
                return;
            }
        }
    });
    if spawned.is_err() {
        // No thread: keep nothing beyond the users' own handles.
        if let Some(s) = SLOT.try_lock().ok().as_mut().and_then(|g| g.as_mut()) {
            s.strong = None;
        }
        REAPER.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn retained_window_is_reused_then_freed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref");
        std::fs::File::create(&path).unwrap().write_all(&[7u8; 4096]).unwrap();
        retain_windows(1 << 20, Duration::from_millis(200));
        let mut f = std::fs::File::open(&path).unwrap();
        let a = next_window(None, &mut f, &path, 0, 4096).unwrap();
        let weak = Arc::downgrade(&a.buf);
        drop(a);
        // Retained after its last user let go: the next read shares it, and
        // a window inside the reference is a slice of the same copy.
        let b = next_window(None, &mut f, &path, 1024, 2048).unwrap();
        assert!(Arc::ptr_eq(&b.buf, &weak.upgrade().unwrap()));
        assert_eq!(b.len(), 2048);
        assert!(next_window(Some(b), &mut f, &path, 4000, 100).is_err());
        let deadline = Instant::now() + Duration::from_secs(5);
        while weak.upgrade().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(weak.upgrade().is_none(), "the window outlived its linger");
        retain_windows(0, Duration::ZERO);
    }

    #[test]
    fn read_at_reports_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        std::fs::File::create(&path).unwrap().write_all(b"abc").unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let mut buf = Vec::new();
        read_at(&mut f, 1, &mut buf, 2).unwrap();
        assert_eq!(buf, b"bc");
        let err = read_at(&mut f, 1, &mut buf, 5).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
