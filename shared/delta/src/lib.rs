//! Strata delta codec: encodes a versioned artifact against a reference version with zstd's
//! "patch-from" mode (the reference, or a window of it, is given to zstd as a prefix) and long
//! distance matching, into a container of independent frames with an index, so that any byte range
//! can be decoded by fetching the footer, the index and only the frames that overlap it.
//!
//! The container format is documented in `docs/delta-format.md`.
//!
//! Memory is bounded whatever the object size: an encode or a decode holds at most one input (or
//! output) frame, its compressed form, one reference window and zstd's state.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, InBuffer, OutBuffer};

mod early;
mod sniff;
mod window;
use early::Early;
pub use sniff::{Sniff, sniff};
pub use window::retain_windows;
use window::{Window, next_window, read_at};

/// First 8 bytes of every container.
pub const HEADER_MAGIC: &[u8; 8] = b"STRDLT1\0";
/// Last 8 bytes of every container.
pub const FOOTER_MAGIC: &[u8; 8] = b"STRDLTIX";
/// Size of the footer in bytes.
pub const FOOTER_LEN: u64 = 40;
/// Size of one index entry in bytes.
pub const ENTRY_LEN: u64 = 56;

/// Frame kind: zstd frame compressed with the reference window as prefix.
pub const KIND_PREFIX: u8 = 0;
/// Frame kind: no bytes; output = reference[ref_start .. ref_start + out_len).
pub const KIND_COPY: u8 = 1;
/// Frame kind: zstd frame compressed without reference.
pub const KIND_PLAIN: u8 = 2;

/// Largest zstd window log (64-bit builds).
const WINDOW_LOG_MAX: u32 = 31;
/// Window log accepted by [`decompress_stream`] (bounds its memory: 128 MiB).
const STREAM_WINDOW_LOG_MAX: u32 = 27;
/// Largest output of one frame accepted by a decoder (guards allocations against a forged index).
const MAX_FRAME_OUT: u64 = 1 << 32;
/// Size of the chunks the decode streams yield.
const CHUNK: usize = 1 << 20;
/// Bytes of a copy frame read from the reference at a time.
const COPY_PIECE: u64 = 8 << 20;

const MIB: u64 = 1 << 20;

/// Encoding parameters.
#[derive(Debug, Clone)]
pub struct DeltaParams {
    /// zstd compression level (default 6: see docs/delta-format.md for the measurements).
    pub level: i32,
    /// Output bytes per frame (the unit of random access and of memory).
    pub frame_size: u64,
    /// Bytes of reference added on both sides of a frame's (scaled) region to form its window.
    pub margin: u64,
    /// A reference of at most this many bytes is used whole as the window of every frame.
    pub whole_ref_max: u64,
    /// zstd long distance matching.
    pub long_distance: bool,
}

impl Default for DeltaParams {
    fn default() -> Self {
        DeltaParams {
            level: 6,
            frame_size: 16 * MIB,
            margin: 8 * MIB,
            whole_ref_max: 64 * MIB,
            long_distance: true,
        }
    }
}

/// What an encode did.
#[derive(Debug, Clone, Default)]
pub struct EncodeStats {
    /// Length of the input (the decoded object).
    pub logical_len: u64,
    /// Length of the container written.
    pub encoded_len: u64,
    /// Number of frames.
    pub frames: u32,
    /// Wall time of the encode.
    pub millis: u64,
}

/// A stream of bytes.
pub type ByteStream = Pin<Box<dyn futures::Stream<Item = io::Result<Bytes>> + Send + Sync>>;

/// Random access to a container.
#[async_trait::async_trait]
pub trait ContainerSource: Send + Sync + 'static {
    /// Length of the container.
    fn len(&self) -> u64;
    /// Whether the container is empty (never a valid container).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A stream of the container's bytes [offset, offset+len).
    async fn read(&self, offset: u64, len: u64) -> io::Result<ByteStream>;
}

/// A container held in memory.
#[derive(Debug, Clone)]
pub struct MemSource(pub Bytes);

#[async_trait::async_trait]
impl ContainerSource for MemSource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    async fn read(&self, offset: u64, len: u64) -> io::Result<ByteStream> {
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= self.0.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the container"))?;
        let b = self.0.slice(offset as usize..end as usize);
        Ok(Box::pin(futures::stream::iter([Ok(b)])))
    }
}

/// A container in a local file.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    len: u64,
}

impl FileSource {
    /// Opens (stats) the container file.
    pub async fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let len = tokio::fs::metadata(&path).await?.len();
        Ok(FileSource { path, len })
    }
}

#[async_trait::async_trait]
impl ContainerSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    async fn read(&self, offset: u64, len: u64) -> io::Result<ByteStream> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the container",
            ));
        }
        let mut f = tokio::fs::File::open(&self.path).await?;
        f.seek(SeekFrom::Start(offset)).await?;
        let s = futures::stream::try_unfold((f, len), |(mut f, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let n = left.min(CHUNK as u64) as usize;
            let mut buf = vec![0u8; n];
            f.read_exact(&mut buf).await?;
            Ok(Some((Bytes::from(buf), (f, left - n as u64))))
        });
        Ok(Box::pin(s))
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn zerr(what: &str, code: usize) -> io::Error {
    invalid(format!("{what}: {}", zstd_safe::get_error_name(code)))
}

fn join_err(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("blocking task failed: {e}"))
}

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEntry {
    /// [`KIND_PREFIX`], [`KIND_COPY`] or [`KIND_PLAIN`].
    pub kind: u8,
    /// Offset of the frame's output in the decoded object.
    pub out_offset: u64,
    /// Length of the frame's output.
    pub out_len: u64,
    /// Offset of the frame's bytes in the container.
    pub frame_offset: u64,
    /// Length of the frame's bytes (0 for a copy frame).
    pub frame_len: u64,
    /// Start of the reference window (or of the copied run).
    pub ref_start: u64,
    /// Length of the reference window (for a copy frame: equal to out_len).
    pub ref_len: u64,
}

impl FrameEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind);
        out.extend_from_slice(&[0u8; 7]);
        for v in [
            self.out_offset,
            self.out_len,
            self.frame_offset,
            self.frame_len,
            self.ref_start,
            self.ref_len,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn decode(b: &[u8]) -> Self {
        let u = |i: usize| u64::from_le_bytes(b[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
        FrameEntry {
            kind: b[0],
            out_offset: u(0),
            out_len: u(1),
            frame_offset: u(2),
            frame_len: u(3),
            ref_start: u(4),
            ref_len: u(5),
        }
    }
}

/// The footer of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Offset of the index in the container.
    pub index_offset: u64,
    /// Number of frames (index entries).
    pub frame_count: u32,
    /// CRC-32 (IEEE) of the index bytes.
    pub index_crc: u32,
    /// Length of the decoded object.
    pub logical_len: u64,
    /// Length of the decoded reference the container was encoded against.
    pub ref_len: u64,
}

impl Footer {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index_offset.to_le_bytes());
        out.extend_from_slice(&self.frame_count.to_le_bytes());
        out.extend_from_slice(&self.index_crc.to_le_bytes());
        out.extend_from_slice(&self.logical_len.to_le_bytes());
        out.extend_from_slice(&self.ref_len.to_le_bytes());
        out.extend_from_slice(FOOTER_MAGIC);
    }

    fn decode(b: &[u8], container_len: u64) -> io::Result<Self> {
        if b.len() as u64 != FOOTER_LEN || &b[32..40] != FOOTER_MAGIC {
            return Err(invalid("not a delta container (bad footer magic)"));
        }
        let u64at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let f = Footer {
            index_offset: u64at(0),
            frame_count: u32at(8),
            index_crc: u32at(12),
            logical_len: u64at(16),
            ref_len: u64at(24),
        };
        let expected = (f.index_offset as u128) + (f.frame_count as u128) * (ENTRY_LEN as u128) + FOOTER_LEN as u128;
        if f.index_offset < HEADER_MAGIC.len() as u64 || expected != container_len as u128 {
            return Err(invalid("corrupt delta container footer (index does not fit)"));
        }
        Ok(f)
    }
}

fn write_tail(entries: &[FrameEntry], index_offset: u64, logical_len: u64, ref_len: u64) -> Vec<u8> {
    let mut idx = Vec::with_capacity(entries.len() * ENTRY_LEN as usize + FOOTER_LEN as usize);
    for e in entries {
        e.encode(&mut idx);
    }
    let footer = Footer {
        index_offset,
        frame_count: entries.len() as u32,
        index_crc: crc32fast::hash(&idx),
        logical_len,
        ref_len,
    };
    footer.encode(&mut idx);
    idx
}

/// Checks that the index describes a well-formed container.
fn validate_index(f: &Footer, entries: &[FrameEntry]) -> io::Result<()> {
    let mut next_out = 0u64;
    let bad = |i: usize, what: &str| invalid(format!("corrupt delta container index: frame {i}: {what}"));
    for (i, e) in entries.iter().enumerate() {
        if e.out_offset != next_out {
            return Err(bad(i, "output offsets are not contiguous"));
        }
        if e.out_len == 0 || e.out_len > MAX_FRAME_OUT {
            return Err(bad(i, "bad output length"));
        }
        next_out = next_out
            .checked_add(e.out_len)
            .ok_or_else(|| bad(i, "output overflows"))?;
        let frame_end = e
            .frame_offset
            .checked_add(e.frame_len)
            .ok_or_else(|| bad(i, "frame overflows"))?;
        if e.frame_offset < HEADER_MAGIC.len() as u64 || frame_end > f.index_offset {
            return Err(bad(i, "frame outside the frames area"));
        }
        let ref_end = e
            .ref_start
            .checked_add(e.ref_len)
            .ok_or_else(|| bad(i, "reference overflows"))?;
        if ref_end > f.ref_len {
            return Err(bad(i, "reference window past the reference"));
        }
        match e.kind {
            KIND_PREFIX => {
                if e.frame_len == 0
                    || e.ref_len == 0
                    || e.frame_len > zstd_safe::compress_bound(e.out_len as usize) as u64
                {
                    return Err(bad(i, "bad prefix frame"));
                }
            }
            KIND_COPY => {
                if e.frame_len != 0 || e.ref_len != e.out_len {
                    return Err(bad(i, "bad copy frame"));
                }
            }
            KIND_PLAIN => {
                if e.frame_len == 0
                    || e.ref_len != 0
                    || e.ref_start != 0
                    || e.frame_len > zstd_safe::compress_bound(e.out_len as usize) as u64
                {
                    return Err(bad(i, "bad plain frame"));
                }
            }
            k => return Err(bad(i, &format!("unknown frame kind {k}"))),
        }
    }
    if next_out != f.logical_len {
        return Err(invalid(
            "corrupt delta container index: frames do not add up to the logical length",
        ));
    }
    Ok(())
}

/// The container of an object identical to its reference (one copy frame).
pub fn identity_container(ref_len: u64) -> Vec<u8> {
    let mut out = HEADER_MAGIC.to_vec();
    let entries: Vec<FrameEntry> = if ref_len == 0 {
        Vec::new()
    } else {
        // A copy frame's output is bounded like any frame's; split long references.
        let mut v = Vec::new();
        let mut off = 0;
        while off < ref_len {
            let n = (ref_len - off).min(MAX_FRAME_OUT);
            v.push(FrameEntry {
                kind: KIND_COPY,
                out_offset: off,
                out_len: n,
                frame_offset: HEADER_MAGIC.len() as u64,
                frame_len: 0,
                ref_start: off,
                ref_len: n,
            });
            off += n;
        }
        v
    };
    let tail = write_tail(&entries, out.len() as u64, ref_len, ref_len);
    out.extend_from_slice(&tail);
    out
}

/// The reference window of frame `[out_offset, out_offset+out_len)` of an input of `input_len`
/// bytes against a reference of `ref_len` bytes.
pub fn ref_window(p: &DeltaParams, input_len: u64, ref_len: u64, out_offset: u64, out_len: u64) -> (u64, u64) {
    if ref_len == 0 {
        return (0, 0);
    }
    if ref_len <= p.whole_ref_max || input_len == 0 {
        return (0, ref_len);
    }
    let scale = |x: u64| ((x as u128) * (ref_len as u128) / (input_len as u128)) as u64;
    let start = scale(out_offset).saturating_sub(p.margin).min(ref_len);
    let end = scale(out_offset + out_len).saturating_add(p.margin).min(ref_len);
    (start, end - start)
}

fn window_log_for(len: u64) -> u32 {
    let len = len.max(1);
    let log = 64 - (len - 1).leading_zeros();
    log.clamp(10, WINDOW_LOG_MAX)
}

fn compress_frame(p: &DeltaParams, input: &[u8], prefix: Option<&[u8]>, dst: &mut Vec<u8>) -> io::Result<()> {
    let mut cctx = CCtx::create();
    let set = |c: &mut CCtx, prm: CParameter| c.set_parameter(prm).map_err(|e| zerr("zstd parameter", e));
    set(&mut cctx, CParameter::CompressionLevel(p.level))?;
    set(&mut cctx, CParameter::ChecksumFlag(true))?;
    set(&mut cctx, CParameter::ContentSizeFlag(true))?;
    if let Some(prefix) = prefix {
        let wlog = window_log_for(prefix.len() as u64 + input.len() as u64);
        set(&mut cctx, CParameter::WindowLog(wlog))?;
        if p.long_distance {
            set(&mut cctx, CParameter::EnableLongDistanceMatching(true))?;
        }
    } else if p.long_distance && input.len() as u64 > (8 * MIB) {
        set(&mut cctx, CParameter::WindowLog(window_log_for(input.len() as u64)))?;
        set(&mut cctx, CParameter::EnableLongDistanceMatching(true))?;
    }
    cctx.set_pledged_src_size(Some(input.len() as u64))
        .map_err(|e| zerr("zstd pledged size", e))?;
    if let Some(prefix) = prefix {
        cctx.ref_prefix(prefix).map_err(|e| zerr("zstd prefix", e))?;
    }
    dst.clear();
    dst.reserve(zstd_safe::compress_bound(input.len()));
    cctx.compress2(dst, input)
        .map_err(|e| io::Error::other(format!("zstd compress: {}", zstd_safe::get_error_name(e))))?;
    Ok(())
}

fn encode_blocking(input: &Path, reference: &Path, out: &Path, p: &DeltaParams) -> io::Result<EncodeStats> {
    let t0 = Instant::now();
    let mut inf = std::fs::File::open(input)?;
    let mut rf = std::fs::File::open(reference)?;
    let input_len = inf.metadata()?.len();
    let ref_len = rf.metadata()?.len();
    let frame_size = p.frame_size.clamp(1, MAX_FRAME_OUT);
    let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    w.write_all(HEADER_MAGIC)?;
    let mut pos = HEADER_MAGIC.len() as u64;
    let mut entries = Vec::new();
    let mut inbuf = Vec::new();
    let mut refbuf: Option<Window> = None;
    let mut refbuf_at: Option<(u64, u64)> = None;
    let mut dst = Vec::new();
    let mut out_offset = 0u64;
    inf.seek(SeekFrom::Start(0))?;
    while out_offset < input_len {
        let out_len = (input_len - out_offset).min(frame_size);
        read_at(&mut inf, out_offset, &mut inbuf, out_len)?;
        let (ws, wl) = ref_window(p, input_len, ref_len, out_offset, out_len);
        let entry = if wl > 0 {
            let w = match refbuf.take() {
                Some(w) if refbuf_at == Some((ws, wl)) => w,
                old => next_window(old, &mut rf, reference, ws, wl)?,
            };
            refbuf_at = Some((ws, wl));
            compress_frame(p, &inbuf, Some(&*w), &mut dst)?;
            refbuf = Some(w);
            FrameEntry {
                kind: KIND_PREFIX,
                out_offset,
                out_len,
                frame_offset: pos,
                frame_len: dst.len() as u64,
                ref_start: ws,
                ref_len: wl,
            }
        } else {
            compress_frame(p, &inbuf, None, &mut dst)?;
            FrameEntry {
                kind: KIND_PLAIN,
                out_offset,
                out_len,
                frame_offset: pos,
                frame_len: dst.len() as u64,
                ref_start: 0,
                ref_len: 0,
            }
        };
        w.write_all(&dst)?;
        pos += dst.len() as u64;
        entries.push(entry);
        out_offset += out_len;
    }
    if entries.len() > u32::MAX as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many frames"));
    }
    let tail = write_tail(&entries, pos, input_len, ref_len);
    w.write_all(&tail)?;
    pos += tail.len() as u64;
    // A scratch file: the blob written from it is what must be durable, so no fsync here.
    w.into_inner().map_err(|e| e.into_error())?;
    Ok(EncodeStats {
        logical_len: input_len,
        encoded_len: pos,
        frames: entries.len() as u32,
        millis: t0.elapsed().as_millis() as u64,
    })
}

/// Encodes the file `input` against the decoded reference file `reference` into a container
/// written to `out`. Blocking work runs in `spawn_blocking`.
pub async fn encode_file(input: &Path, reference: &Path, out: &Path, p: &DeltaParams) -> io::Result<EncodeStats> {
    let (input, reference, out, p) = (input.to_owned(), reference.to_owned(), out.to_owned(), p.clone());
    tokio::task::spawn_blocking(move || encode_blocking(&input, &reference, &out, &p))
        .await
        .map_err(join_err)?
}

/// The part of a [`StreamEncoder`] a frame's compression job owns while it runs.
struct EncSink {
    w: io::BufWriter<std::fs::File>,
    rf: std::fs::File,
    pos: u64,
    entries: Vec<FrameEntry>,
    window: RefCache,
    dst: Vec<u8>,
}

type EncJob = tokio::task::JoinHandle<io::Result<(EncSink, Vec<u8>)>>;

/// Encodes an input that arrives piece by piece (a request body) against the decoded reference
/// file, compressing each frame on the blocking pool as soon as its bytes are in while the next
/// frame fills: the container is ready shortly after the last byte arrives. The input's length
/// must be declared up front (frame windows are scaled by `ref_len / declared_len`); pushing more
/// or finishing with fewer bytes is an error (`InvalidInput`). Memory: two frames (one filling,
/// one compressing), one reference window, the compressed frame and zstd's state. The container
/// written is the one [`encode_file`] would write for the same input (same frames and windows).
pub struct StreamEncoder {
    p: DeltaParams,
    reference: PathBuf,
    ref_len: u64,
    declared_len: u64,
    frame_size: u64,
    /// Offset of the frame being filled.
    frame_start: u64,
    buf: Vec<u8>,
    spare: Option<Vec<u8>>,
    sink: Option<EncSink>,
    job: Option<EncJob>,
    failed: bool,
    t0: Instant,
}

impl StreamEncoder {
    /// Starts a container at `out` for an input of `declared_len` bytes.
    pub async fn new(reference: &Path, out: &Path, declared_len: u64, p: &DeltaParams) -> io::Result<Self> {
        let (r, o) = (reference.to_owned(), out.to_owned());
        let sink = tokio::task::spawn_blocking(move || -> io::Result<(EncSink, u64)> {
            let rf = std::fs::File::open(&r)?;
            let ref_len = rf.metadata()?.len();
            let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&o)?);
            w.write_all(HEADER_MAGIC)?;
            let sink = EncSink {
                w,
                rf,
                pos: HEADER_MAGIC.len() as u64,
                entries: Vec::new(),
                window: None,
                dst: Vec::new(),
            };
            Ok((sink, ref_len))
        })
        .await
        .map_err(join_err)??;
        let frame_size = p.frame_size.clamp(1, MAX_FRAME_OUT);
        Ok(StreamEncoder {
            p: p.clone(),
            reference: reference.to_owned(),
            ref_len: sink.1,
            declared_len,
            frame_size,
            frame_start: 0,
            buf: Vec::new(),
            spare: None,
            sink: Some(sink.0),
            job: None,
            failed: false,
            t0: Instant::now(),
        })
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.frame_start + self.buf.len() as u64
    }

    fn this_frame_len(&self) -> u64 {
        (self.declared_len - self.frame_start).min(self.frame_size)
    }

    /// Adds the next bytes of the input; waits only when a full frame is ready while the previous
    /// one is still compressing.
    pub async fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("the encoder failed earlier"));
        }
        if self.received() + data.len() as u64 > self.declared_len {
            self.failed = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("input longer than its declared length {}", self.declared_len),
            ));
        }
        while !data.is_empty() {
            let want = self.this_frame_len();
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(want as usize);
            }
            let n = ((want - self.buf.len() as u64) as usize).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() as u64 == want
                && let Err(e) = self.submit().await
            {
                self.failed = true;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn wait_job(&mut self) -> io::Result<()> {
        if let Some(job) = self.job.take() {
            let (sink, spare) = job.await.map_err(join_err)??;
            self.sink = Some(sink);
            self.spare = Some(spare);
        }
        Ok(())
    }

    /// Hands the full frame in `buf` to a compression job.
    async fn submit(&mut self) -> io::Result<()> {
        self.wait_job().await?;
        let mut sink = self.sink.take().ok_or_else(|| io::Error::other("encoder state lost"))?;
        let mut next = self.spare.take().unwrap_or_default();
        next.clear();
        let input = std::mem::replace(&mut self.buf, next);
        let out_offset = self.frame_start;
        let out_len = input.len() as u64;
        self.frame_start += out_len;
        let want = self.this_frame_len();
        if want > 0 && self.buf.capacity() < want as usize {
            self.buf.reserve_exact(want as usize - self.buf.len());
        }
        let (p, reference, declared_len, ref_len) =
            (self.p.clone(), self.reference.clone(), self.declared_len, self.ref_len);
        self.job = Some(tokio::task::spawn_blocking(move || {
            let (ws, wl) = ref_window(&p, declared_len, ref_len, out_offset, out_len);
            let entry = if wl > 0 {
                let w = match sink.window.take() {
                    Some((at, w)) if at == (ws, wl) => w,
                    old => next_window(old.map(|(_, w)| w), &mut sink.rf, &reference, ws, wl)?,
                };
                compress_frame(&p, &input, Some(&*w), &mut sink.dst)?;
                sink.window = Some(((ws, wl), w));
                FrameEntry {
                    kind: KIND_PREFIX,
                    out_offset,
                    out_len,
                    frame_offset: sink.pos,
                    frame_len: sink.dst.len() as u64,
                    ref_start: ws,
                    ref_len: wl,
                }
            } else {
                compress_frame(&p, &input, None, &mut sink.dst)?;
                FrameEntry {
                    kind: KIND_PLAIN,
                    out_offset,
                    out_len,
                    frame_offset: sink.pos,
                    frame_len: sink.dst.len() as u64,
                    ref_start: 0,
                    ref_len: 0,
                }
            };
            sink.w.write_all(&sink.dst)?;
            sink.pos += sink.dst.len() as u64;
            sink.entries.push(entry);
            Ok((sink, input))
        }));
        Ok(())
    }

    /// Finishes the container once the whole declared input was pushed; returns what was written.
    pub async fn finish(mut self) -> io::Result<EncodeStats> {
        if self.failed {
            return Err(io::Error::other("the encoder failed earlier"));
        }
        if self.received() != self.declared_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "input of {} bytes shorter than its declared length {}",
                    self.received(),
                    self.declared_len
                ),
            ));
        }
        self.wait_job().await?;
        let mut sink = self.sink.take().ok_or_else(|| io::Error::other("encoder state lost"))?;
        let (logical_len, ref_len, t0) = (self.declared_len, self.ref_len, self.t0);
        drop(self);
        tokio::task::spawn_blocking(move || {
            if sink.entries.len() > u32::MAX as usize {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many frames"));
            }
            let tail = write_tail(&sink.entries, sink.pos, logical_len, ref_len);
            sink.w.write_all(&tail)?;
            sink.w.flush()?;
            Ok(EncodeStats {
                logical_len,
                encoded_len: sink.pos + tail.len() as u64,
                frames: sink.entries.len() as u32,
                millis: t0.elapsed().as_millis() as u64,
            })
        })
        .await
        .map_err(join_err)?
    }
}

/// zstd-compresses a file into zstd frames (for references stored whole), returns the compressed
/// length. The frames carry their content size and a checksum; their window is the level's default
/// (at most 8 MiB up to level 19, 128 MiB at 22), which [`decompress_stream`] accepts.
pub async fn compress_file(input: &Path, out: &Path, level: i32) -> io::Result<u64> {
    let (input, out) = (input.to_owned(), out.to_owned());
    tokio::task::spawn_blocking(move || -> io::Result<u64> {
        let mut inf = std::fs::File::open(&input)?;
        let len = inf.metadata()?.len();
        let outf = std::fs::File::create(&out)?;
        let mut enc = zstd::stream::Encoder::new(io::BufWriter::with_capacity(1 << 20, outf), level)?;
        enc.include_checksum(true)?;
        enc.include_contentsize(true)?;
        enc.set_pledged_src_size(Some(len))?;
        io::copy(&mut inf, &mut enc)?;
        let w = enc.finish()?;
        // Scratch output (uploaded afterwards, durably): not fsynced.
        let f = w.into_inner().map_err(|e| e.into_error())?;
        Ok(f.metadata()?.len())
    })
    .await
    .map_err(join_err)?
}

/// zstd-compresses a file like [`compress_file`] but with long distance matching and a window of
/// `2^window_log` bytes (clamped to what the input needs), for recompressing references at a high
/// level off the write path. `window_log` must be at most 27 so that [`decompress_stream`] (which
/// accepts windows up to 128 MiB) can decode the result. Returns the compressed length.
pub async fn compress_file_long(input: &Path, out: &Path, level: i32, window_log: u32) -> io::Result<u64> {
    if !(10..=STREAM_WINDOW_LOG_MAX).contains(&window_log) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("window log {window_log} outside 10..={STREAM_WINDOW_LOG_MAX}"),
        ));
    }
    let (input, out) = (input.to_owned(), out.to_owned());
    tokio::task::spawn_blocking(move || -> io::Result<u64> {
        let mut inf = std::fs::File::open(&input)?;
        let len = inf.metadata()?.len();
        let outf = std::fs::File::create(&out)?;
        let mut enc = zstd::stream::Encoder::new(io::BufWriter::with_capacity(1 << 20, outf), level)?;
        enc.include_checksum(true)?;
        enc.include_contentsize(true)?;
        enc.long_distance_matching(true)?;
        enc.window_log(window_log.min(window_log_for(len)))?;
        enc.set_pledged_src_size(Some(len))?;
        io::copy(&mut inf, &mut enc)?;
        let w = enc.finish()?;
        // Scratch output (uploaded afterwards, durably): not fsynced.
        let f = w.into_inner().map_err(|e| e.into_error())?;
        Ok(f.metadata()?.len())
    })
    .await
    .map_err(join_err)?
}

struct DecompressState {
    input: ByteStream,
    dctx: DCtx<'static>,
    pending: Bytes,
    eof: bool,
    /// Last return of decompress_stream: 0 when at a frame boundary.
    hint: usize,
    /// The last call made progress: zstd may hold more output.
    maybe_more: bool,
    done: bool,
}

/// Streams the decompression of zstd frames (a compressed reference) with bounded memory.
/// Accepts windows up to 128 MiB; a truncated or corrupt input ends the stream with InvalidData.
pub fn decompress_stream(compressed: ByteStream) -> ByteStream {
    let mut dctx = DCtx::create();
    let init = dctx.set_parameter(DParameter::WindowLogMax(STREAM_WINDOW_LOG_MAX));
    let st = DecompressState {
        input: compressed,
        dctx,
        pending: Bytes::new(),
        eof: false,
        hint: 0,
        maybe_more: false,
        done: false,
    };
    let s = futures::stream::unfold(st, move |mut st| async move {
        if let Err(e) = init {
            if st.done {
                return None;
            }
            st.done = true;
            return Some((Err(zerr("zstd parameter", e)), st));
        }
        loop {
            if st.done {
                return None;
            }
            if st.pending.is_empty() && !st.eof {
                match st.input.next().await {
                    Some(Ok(b)) => {
                        st.pending = b;
                        continue;
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    None => st.eof = true,
                }
            }
            if st.pending.is_empty() && st.eof && !st.maybe_more {
                // No more input and no more output: the last frame must be complete.
                st.done = true;
                if st.hint != 0 {
                    return Some((Err(invalid("truncated zstd stream")), st));
                }
                return None;
            }
            let mut out: Vec<u8> = Vec::with_capacity(256 * 1024);
            let consumed;
            {
                let mut ob = OutBuffer::around(&mut out);
                let mut ib = InBuffer::around(&st.pending);
                match st.dctx.decompress_stream(&mut ob, &mut ib) {
                    // A call that makes no progress after a frame ended answers with
                    // the next frame's header size; only progress updates the hint.
                    Ok(h) if ib.pos() > 0 || ob.pos() > 0 => st.hint = h,
                    Ok(_) => {}
                    Err(e) => {
                        st.done = true;
                        return Some((Err(zerr("zstd decompress", e)), st));
                    }
                }
                consumed = ib.pos();
            }
            let _ = st.pending.split_to(consumed);
            // zstd may hold decoded data back even when the output buffer
            // was not filled: keep calling while a call makes progress.
            st.maybe_more = !out.is_empty() || consumed > 0;
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), st));
            }
        }
    });
    Box::pin(sync_wrapper::SyncStream::new(s))
}

async fn read_exact_from(src: &dyn ContainerSource, offset: u64, len: u64) -> io::Result<Bytes> {
    let mut s = src.read(offset, len).await?;
    let mut buf = BytesMut::with_capacity(len as usize);
    while let Some(b) = s.next().await {
        let b = b?;
        if buf.len() + b.len() > len as usize {
            return Err(invalid("container source returned more bytes than asked"));
        }
        buf.extend_from_slice(&b);
    }
    if buf.len() as u64 != len {
        return Err(invalid(
            "container source returned fewer bytes than asked (truncated container?)",
        ));
    }
    Ok(buf.freeze())
}

/// Reads and checks the footer of a container.
pub async fn read_footer(src: &dyn ContainerSource) -> io::Result<Footer> {
    let len = src.len();
    if len < HEADER_MAGIC.len() as u64 + FOOTER_LEN {
        return Err(invalid("delta container too short"));
    }
    let b = read_exact_from(src, len - FOOTER_LEN, FOOTER_LEN).await?;
    Footer::decode(&b, len)
}

/// Reads and checks the footer and the index of a container.
pub async fn read_index(src: &dyn ContainerSource) -> io::Result<(Footer, Vec<FrameEntry>)> {
    let f = read_footer(src).await?;
    let ilen = f.frame_count as u64 * ENTRY_LEN;
    let b = if ilen == 0 {
        Bytes::new()
    } else {
        read_exact_from(src, f.index_offset, ilen).await?
    };
    if crc32fast::hash(&b) != f.index_crc {
        return Err(invalid("corrupt delta container index (checksum mismatch)"));
    }
    let entries: Vec<FrameEntry> = b.chunks_exact(ENTRY_LEN as usize).map(FrameEntry::decode).collect();
    validate_index(&f, &entries)?;
    Ok((f, entries))
}

/// The logical length recorded in a container's footer (reads the footer only).
pub async fn logical_len(src: &dyn ContainerSource) -> io::Result<u64> {
    Ok(read_footer(src).await?.logical_len)
}

type RefCache = Option<((u64, u64), Window)>;

fn decode_frame_blocking(
    e: FrameEntry,
    frame: Bytes,
    reference: &Path,
    cache: RefCache,
    lo: u64,
    hi: u64,
    early: &Early,
) -> io::Result<(Bytes, RefCache)> {
    match e.kind {
        KIND_COPY => {
            // A slice of the shared copy of the reference when it has one (no copy), else a read.
            // The piece is kept as the cache so that the next one finds the shared copy alive.
            let mut f = std::fs::File::open(reference)?;
            let at = (e.ref_start + lo, hi - lo);
            let piece = next_window(cache.map(|(_, w)| w), &mut f, reference, at.0, at.1)?;
            Ok((Bytes::from_owner(piece.clone()), Some((at, piece))))
        }
        KIND_PREFIX | KIND_PLAIN => {
            let window = if e.kind == KIND_PREFIX {
                match cache {
                    Some((at, w)) if at == (e.ref_start, e.ref_len) => Some((at, w)),
                    old => {
                        let mut f = std::fs::File::open(reference)?;
                        let w = next_window(old.map(|(_, w)| w), &mut f, reference, e.ref_start, e.ref_len)?;
                        Some(((e.ref_start, e.ref_len), w))
                    }
                }
            } else {
                cache
            };
            let prefix = window.as_ref().filter(|_| e.kind == KIND_PREFIX).map(|(_, w)| &w[..]);
            let (out, sent) = early::decode_frame(&frame, prefix, e.out_len, lo, hi, early)?;
            let b = Bytes::from(out).slice(sent as usize..hi as usize);
            Ok((b, window))
        }
        k => Err(invalid(format!("unknown frame kind {k}"))),
    }
}

struct RangeState {
    src: Arc<dyn ContainerSource>,
    reference: PathBuf,
    /// Frames to decode with the part [lo, hi) of each one's output wanted.
    todo: std::vec::IntoIter<(FrameEntry, u64, u64)>,
    cache: RefCache,
    /// The next frame, being fetched and decoded while the current one streams.
    next: Option<Decoding>,
    pending: Bytes,
    done: bool,
}

/// Fetches one frame's bytes and decodes them (on the blocking pool).
async fn fetch_and_decode(
    src: Arc<dyn ContainerSource>,
    reference: PathBuf,
    cache: RefCache,
    (e, lo, hi): (FrameEntry, u64, u64),
    early: Early,
) -> io::Result<(Bytes, RefCache)> {
    let frame = if e.frame_len > 0 {
        read_exact_from(&*src, e.frame_offset, e.frame_len).await?
    } else {
        Bytes::new()
    };
    tokio::task::spawn_blocking(move || decode_frame_blocking(e, frame, &reference, cache, lo, hi, &early))
        .await
        .map_err(join_err)
        .and_then(|r| r)
        .map_err(|err| {
            if err.kind() == io::ErrorKind::UnexpectedEof {
                invalid(format!("reference shorter than the container says: {err}"))
            } else {
                err
            }
        })
}

/// A frame being decoded: its early output, then the rest with the reference window.
struct Decoding {
    early: early::Receiver,
    rest: tokio::task::JoinHandle<io::Result<(Bytes, RefCache)>>,
}

fn start_decoding(st: &RangeState, cache: RefCache, item: (FrameEntry, u64, u64)) -> Decoding {
    let (tx, rx) = early::channel();
    let job = fetch_and_decode(st.src.clone(), st.reference.clone(), cache, item, tx);
    Decoding {
        early: rx,
        rest: tokio::spawn(job),
    }
}

/// Streams logical bytes [start, end) of a container, decoding only the frames that overlap,
/// against the decoded reference file. Output is streamed frame by frame (bounded memory); errors
/// (corrupt container, wrong reference length, zstd errors) are `InvalidData` and end the stream;
/// it never yields bytes that did not decode cleanly.
pub async fn decode_range(
    src: Arc<dyn ContainerSource>,
    reference: PathBuf,
    start: u64,
    end: u64,
) -> io::Result<ByteStream> {
    let (f, entries) = read_index(&*src).await?;
    if start > end || end > f.logical_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("range {start}..{end} outside the object (length {})", f.logical_len),
        ));
    }
    if entries.iter().any(|e| e.kind != KIND_PLAIN) {
        let rlen = tokio::fs::metadata(&reference).await?.len();
        if rlen != f.ref_len {
            return Err(invalid(format!(
                "wrong reference: length {rlen}, the container was encoded against {} bytes",
                f.ref_len
            )));
        }
    }
    let todo: Vec<(FrameEntry, u64, u64)> = entries
        .into_iter()
        .filter(|e| e.out_offset < end && e.out_offset + e.out_len > start)
        .flat_map(|e| {
            let lo = start.saturating_sub(e.out_offset);
            let hi = (end - e.out_offset).min(e.out_len);
            // A copy frame is read from the reference piece by piece, so that
            // an identity container of any size needs one piece of memory.
            let step = if e.kind == KIND_COPY { COPY_PIECE } else { u64::MAX };
            let mut pieces = Vec::new();
            let mut at = lo;
            while at < hi {
                let to = hi.min(at.saturating_add(step));
                pieces.push((e, at, to));
                at = to;
            }
            pieces
        })
        .collect();
    let st = RangeState {
        src,
        reference,
        todo: todo.into_iter(),
        cache: None,
        next: None,
        pending: Bytes::new(),
        done: false,
    };
    let s = futures::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        if st.pending.is_empty() {
            let mut current = match st.next.take() {
                Some(d) => d,
                None => {
                    let item = st.todo.next()?;
                    let cache = st.cache.take();
                    start_decoding(&st, cache, item)
                }
            };
            // What the decoder let out while it worked, then the rest.
            if let Some(chunk) = current.early.recv().await {
                st.next = Some(current);
                return Some((Ok(chunk), st));
            }
            let decoded = current.rest.await.map_err(join_err).and_then(|r| r);
            match decoded {
                Ok((b, cache)) => {
                    st.pending = b;
                    // Decode the next frame while this one streams out (one
                    // frame ahead: memory stays two frames and one window).
                    match st.todo.next() {
                        Some(item) => st.next = Some(start_decoding(&st, cache, item)),
                        None => st.cache = cache,
                    }
                }
                Err(err) => {
                    st.done = true;
                    return Some((Err(err), st));
                }
            }
            if st.pending.is_empty() {
                // An empty piece (cannot happen for a valid index): go on.
                return Some((Ok(Bytes::new()), st));
            }
        }
        let n = st.pending.len().min(CHUNK);
        let chunk = st.pending.split_to(n);
        Some((Ok(chunk), st))
    });
    Ok(Box::pin(sync_wrapper::SyncStream::new(s)))
}

/// Convenience: decodes a whole container to a file (streaming, bounded memory). Returns the length.
pub async fn decode_to_file(src: Arc<dyn ContainerSource>, reference: PathBuf, out: &Path) -> io::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let len = logical_len(&*src).await?;
    let mut s = decode_range(src, reference, 0, len).await?;
    let mut f = tokio::fs::File::create(out).await?;
    let mut n = 0u64;
    while let Some(b) = s.next().await {
        let b = b?;
        f.write_all(&b).await?;
        n += b.len() as u64;
    }
    f.flush().await?;
    Ok(n)
}
