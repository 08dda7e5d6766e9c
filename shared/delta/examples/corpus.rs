//! Measures the codec over /tmp/corpus (first version of each set as reference):
//! `cargo run --release -p strata-delta --example corpus [quick]`.
//! With `BIG_MIB=1024` it also encodes/decodes a synthetic BIG_MIB input against a BIG_MIB reference
//! and reports peak memory (VmHWM).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use strata_delta::*;

const MIB: u64 = 1 << 20;

fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn hwm_mib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // Version order ("sort -V") for these names: compare the numeric parts.
    let key = |p: &PathBuf| -> Vec<u64> {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        name.split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap_or(0))
            .collect()
    };
    v.sort_by_key(key);
    v
}

struct Row {
    name: String,
    orig: u64,
    enc: u64,
    enc_mbs: f64,
    dec_mbs: f64,
    enc_hwm: u64,
    dec_hwm: u64,
}

async fn measure(input: &Path, reference: &Path, p: &DeltaParams, tmp: &Path) -> Row {
    let out = tmp.join("container");
    reset_hwm();
    let t = Instant::now();
    let st = encode_file(input, reference, &out, p).await.expect("encode");
    let enc_s = t.elapsed().as_secs_f64();
    let enc_hwm = hwm_mib();
    let src: Arc<dyn ContainerSource> = Arc::new(FileSource::open(&out).await.expect("open"));
    let dec = tmp.join("decoded");
    reset_hwm();
    let t = Instant::now();
    let n = decode_to_file(src, reference.to_owned(), &dec).await.expect("decode");
    let dec_s = t.elapsed().as_secs_f64();
    let dec_hwm = hwm_mib();
    assert_eq!(n, st.logical_len);
    assert!(
        std::fs::read(&dec).unwrap() == std::fs::read(input).unwrap(),
        "decode differs for {input:?}"
    );
    let mb = st.logical_len as f64 / 1e6;
    Row {
        name: input.file_name().unwrap().to_string_lossy().to_string(),
        orig: st.logical_len,
        enc: st.encoded_len,
        enc_mbs: mb / enc_s,
        dec_mbs: mb / dec_s,
        enc_hwm,
        dec_hwm,
    }
}

fn describe(p: &DeltaParams) -> String {
    format!(
        "level {} frame {} MiB margin {} MiB whole_ref_max {} MiB ldm {}",
        p.level,
        p.frame_size / MIB,
        p.margin / MIB,
        p.whole_ref_max / MIB,
        p.long_distance
    )
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let tmp = tempfile::tempdir().unwrap();
    let d = DeltaParams::default();
    // (set, indices of versions to encode, xdelta3 -9 sizes in KB for those)
    let sets: [(&str, &[usize], &[f64]); 2] = [
        ("/tmp/corpus/wheels", &[1, 4, 7], &[274.0, 1430.0, 1660.0]),
        ("/tmp/corpus/tars", &[1, 2, 3], &[278.0, 209.0, 288.0]),
    ];
    let mut configs = vec![
        d.clone(),
        DeltaParams {
            frame_size: 16 * MIB,
            ..d.clone()
        },
        DeltaParams {
            frame_size: 16 * MIB,
            margin: 8 * MIB,
            whole_ref_max: 0,
            ..d.clone()
        },
        DeltaParams { level: 3, ..d.clone() },
        DeltaParams { level: 9, ..d.clone() },
    ];
    if let Some(l) = std::env::args().find_map(|a| a.strip_prefix("levels=").map(str::to_owned)) {
        configs.clear();
        for l in l.split(',') {
            let level: i32 = l.parse().expect("level");
            configs.push(DeltaParams { level, ..d.clone() });
            configs.push(DeltaParams {
                level,
                frame_size: 16 * MIB,
                margin: 8 * MIB,
                whole_ref_max: 0,
                ..d.clone()
            });
        }
    } else if !quick {
        configs.push(DeltaParams { level: 19, ..d.clone() });
        configs.push(DeltaParams {
            long_distance: false,
            ..d.clone()
        });
    }
    let bigonly = std::env::args().any(|a| a == "bigonly");
    for (dir, idx, xd) in sets {
        if bigonly {
            break;
        }
        let files = sorted_files(Path::new(dir));
        if files.len() < 2 {
            println!("{dir}: no corpus");
            continue;
        }
        let reference = &files[0];
        println!(
            "\n== {dir} (reference {})",
            reference.file_name().unwrap().to_string_lossy()
        );
        for p in &configs {
            println!("-- {}", describe(p));
            println!(
                "{:<28} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8}",
                "file", "orig", "encoded", "ratio", "vs xd3", "enc MB/s", "dec MB/s", "encHWM", "decHWM"
            );
            for (k, &i) in idx.iter().enumerate() {
                if i >= files.len() || (p.level >= 19 && dir.ends_with("tars") && k > 0) {
                    continue;
                }
                let r = measure(&files[i], reference, p, tmp.path()).await;
                println!(
                    "{:<28} {:>10} {:>10} {:>7.2}% {:>7.2}x {:>9.1} {:>9.1} {:>6}Mi {:>6}Mi",
                    r.name,
                    r.orig,
                    r.enc,
                    100.0 * r.enc as f64 / r.orig as f64,
                    r.enc as f64 / (xd[k] * 1000.0),
                    r.enc_mbs,
                    r.dec_mbs,
                    r.enc_hwm,
                    r.dec_hwm
                );
            }
        }
    }
    if let Ok(big) = std::env::var("BIG_MIB") {
        let big: u64 = big.parse().expect("BIG_MIB");
        big_test(big * MIB, tmp.path()).await;
    }
}

/// Synthetic: a reference of `n` bytes and an input made of its blocks with some shuffled, edited
/// and inserted, written block by block (never held whole).
async fn big_test(n: u64, tmp: &Path) {
    use std::io::Write;
    let rp = tmp.join("big_ref");
    let ip = tmp.join("big_in");
    let block = MIB as usize;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    {
        let mut r = std::io::BufWriter::new(std::fs::File::create(&rp).unwrap());
        let mut i = std::io::BufWriter::new(std::fs::File::create(&ip).unwrap());
        let mut buf = vec![0u8; block];
        for b in 0..n / MIB {
            for c in buf.chunks_mut(8) {
                let v = next();
                // Half random, half text-like.
                c.copy_from_slice(&if v & 1 == 0 {
                    v.to_le_bytes()
                } else {
                    [b'a' + (v % 7) as u8; 8]
                });
            }
            r.write_all(&buf).unwrap();
            if b % 50 == 7 {
                buf[1000..1200].fill(b'#');
            }
            if b % 97 == 3 {
                i.write_all(&buf[..4096]).unwrap();
            }
            i.write_all(&buf).unwrap();
        }
    }
    let p = DeltaParams::default();
    println!("\n== synthetic {} MiB vs {} MiB, {}", n / MIB, n / MIB, describe(&p));
    let r = measure(&ip, &rp, &p, tmp).await;
    println!(
        "{}: orig {} encoded {} ({:.3}%), enc {:.1} MB/s, dec {:.1} MB/s, peak RSS (VmHWM) encode {} MiB, decode {} MiB",
        r.name,
        r.orig,
        r.enc,
        100.0 * r.enc as f64 / r.orig as f64,
        r.enc_mbs,
        r.dec_mbs,
        r.enc_hwm,
        r.dec_hwm
    );
}
