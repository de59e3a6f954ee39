//! Checksum manifests: a small file that records the size and CRC-32 of every file of a
//! directory (a checkpoint), written after them, and checked before they are trusted. It
//! knows nothing of what the files hold; the caller names them.
//!
//! The format is text, one line each:
//!
//! ```text
//! mixsac-manifest 1
//! <CRC-32, 8 hex digits> <size in bytes> <file name>      one line per file
//! <CRC-32 of every byte above this line, 8 hex digits> end
//! ```
//!
//! The CRC is CRC-32/ISO-HDLC (the one of zip, PNG and the `.mxp` policy file), computed with
//! crc32fast. It catches every error burst of 32 bits or less — so every damaged byte — and
//! other damage with probability 1 − 2⁻³²: a guard against disks and copies, not against
//! deliberate tampering.
//!
//! [`write`] reads every file back to checksum it and makes it durable (fsync), then writes
//! the manifest to a temporary file, fsyncs it, renames it into place and fsyncs the
//! directory: once the manifest exists, every file it vouches for is whole on disk.
//! [`verify`] checks the manifest's own CRC first, then that it lists the files the caller
//! needs, then the size and CRC of every file it lists.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The first line of a manifest: the format and its version.
const HEADER: &str = "mixsac-manifest 1";

/// Why a directory's files cannot be trusted. Each message names the file and what is wrong
/// with it.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// There is no manifest (files written by a version that wrote none, or it was deleted).
    #[error("{} is missing", manifest.display())]
    NoManifest { manifest: PathBuf },
    /// The manifest itself is damaged or cut short, or is not a manifest.
    #[error("{} is damaged: {reason}", manifest.display())]
    BadManifest { manifest: PathBuf, reason: String },
    /// The manifest does not cover a file the caller needs.
    #[error("{} does not list {}, which is needed", manifest.display(), file.display())]
    Unlisted { manifest: PathBuf, file: PathBuf },
    /// A file the manifest lists is not there.
    #[error("{} is missing ({} lists it)", file.display(), manifest.display())]
    MissingFile { file: PathBuf, manifest: PathBuf },
    /// A file has another size than the manifest records (cut short, or grown).
    #[error("{} is damaged: it has {found} bytes but {} records {recorded}", file.display(), manifest.display())]
    SizeMismatch {
        file: PathBuf,
        manifest: PathBuf,
        recorded: u64,
        found: u64,
    },
    /// A file's bytes differ from those the manifest recorded.
    #[error("{} is damaged: its CRC-32 is {found:08x} but {} records {recorded:08x}", file.display(), manifest.display())]
    ChecksumMismatch {
        file: PathBuf,
        manifest: PathBuf,
        recorded: u32,
        found: u32,
    },
    /// The operating system refused a read or write.
    #[error("cannot {doing} {}: {error}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

/// One file as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    crc32: u32,
    bytes: u64,
    name: String,
}

/// Records the size and CRC-32 of `files` in `manifest`, after making each of them durable;
/// the manifest is written last and atomically (temporary file, fsync, rename, fsync of the
/// directory). Every file must lie in the manifest's directory, with a name free of
/// whitespace.
pub fn write(manifest: &Path, files: &[PathBuf]) -> Result<(), ManifestError> {
    let dir = directory(manifest);
    let mut text = format!("{HEADER}\n");
    for file in files {
        let name = file_name(file);
        debug_assert!(
            file.parent() == Some(dir) && !name.is_empty() && !name.contains(char::is_whitespace),
            "{} cannot be recorded in {}",
            file.display(),
            manifest.display()
        );
        let io = |doing| {
            move |error| ManifestError::Io {
                doing,
                path: file.clone(),
                error,
            }
        };
        let mut handle = File::open(file).map_err(io("open"))?;
        let (bytes, crc32) = checksum(&mut handle).map_err(io("read"))?;
        handle.sync_all().map_err(io("sync"))?;
        text += &format!("{crc32:08x} {bytes} {name}\n");
    }
    text += &format!("{:08x} end\n", crc32fast::hash(text.as_bytes()));

    let temporary = manifest.with_file_name(format!("{}.tmp", file_name(manifest)));
    let io = |doing, path: &Path| {
        let path = path.to_path_buf();
        move |error| ManifestError::Io { doing, path, error }
    };
    {
        use std::io::Write;
        let mut handle = File::create(&temporary).map_err(io("create", &temporary))?;
        handle
            .write_all(text.as_bytes())
            .map_err(io("write", &temporary))?;
        handle.sync_all().map_err(io("sync", &temporary))?;
    }
    std::fs::rename(&temporary, manifest).map_err(io("rename into place", &temporary))?;
    sync_dir(dir).map_err(io("sync", dir))
}

/// Checks that `manifest` is whole, that it lists every file of `needed`, and that every file
/// it lists has the recorded size and CRC-32. Stops at the first problem.
pub fn verify(manifest: &Path, needed: &[PathBuf]) -> Result<(), ManifestError> {
    let dir = directory(manifest);
    let bytes = match std::fs::read(manifest) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ManifestError::NoManifest {
                manifest: manifest.to_path_buf(),
            })
        }
        Err(error) => {
            return Err(ManifestError::Io {
                doing: "read",
                path: manifest.to_path_buf(),
                error,
            })
        }
    };
    let entries = parse(&bytes).map_err(|reason| ManifestError::BadManifest {
        manifest: manifest.to_path_buf(),
        reason,
    })?;
    for file in needed {
        if !entries.iter().any(|e| e.name == file_name(file)) {
            return Err(ManifestError::Unlisted {
                manifest: manifest.to_path_buf(),
                file: file.clone(),
            });
        }
    }
    for entry in &entries {
        let file = dir.join(&entry.name);
        let io = |doing| {
            let path = file.clone();
            move |error| ManifestError::Io { doing, path, error }
        };
        let mut handle = match File::open(&file) {
            Ok(handle) => handle,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::MissingFile {
                    file,
                    manifest: manifest.to_path_buf(),
                })
            }
            Err(error) => return Err(io("open")(error)),
        };
        let size = handle.metadata().map_err(io("read"))?.len();
        if size != entry.bytes {
            return Err(ManifestError::SizeMismatch {
                file,
                manifest: manifest.to_path_buf(),
                recorded: entry.bytes,
                found: size,
            });
        }
        let (_, crc32) = checksum(&mut handle).map_err(io("read"))?;
        if crc32 != entry.crc32 {
            return Err(ManifestError::ChecksumMismatch {
                file,
                manifest: manifest.to_path_buf(),
                recorded: entry.crc32,
                found: crc32,
            });
        }
    }
    Ok(())
}

/// Makes the renames and removals done in `dir` durable (fsync of the directory).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The entries of a manifest, or why it cannot be read. Its own CRC is checked before
/// anything else is looked at.
fn parse(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    const CUT: &str = "it does not end with its checksum line (cut short?)";
    let without_end = bytes.strip_suffix(b"\n").ok_or(CUT)?;
    let split = without_end.iter().rposition(|&b| b == b'\n').ok_or(CUT)?;
    let (body, last) = (&bytes[..=split], &without_end[split + 1..]);
    let recorded = std::str::from_utf8(last)
        .ok()
        .and_then(|last| last.strip_suffix(" end"))
        .and_then(hex32)
        .ok_or(CUT)?;
    let found = crc32fast::hash(body);
    if found != recorded {
        return Err(format!(
            "its own CRC-32 is {found:08x} but its last line records {recorded:08x}"
        ));
    }
    let body = std::str::from_utf8(body).map_err(|_| "it is not text")?;
    let mut lines = body.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("it does not start with `{HEADER}`"));
    }
    let mut entries: Vec<Entry> = Vec::new();
    for line in lines {
        let entry = match line.split(' ').collect::<Vec<_>>()[..] {
            [crc32, bytes, name] if !name.is_empty() && !name.contains(['/', '\\']) => hex32(crc32)
                .zip(bytes.parse().ok())
                .map(|(crc32, bytes)| Entry {
                    crc32,
                    bytes,
                    name: name.to_string(),
                }),
            _ => None,
        };
        let entry = entry.ok_or_else(|| format!("unreadable line `{line}`"))?;
        if entries.iter().any(|e| e.name == entry.name) {
            return Err(format!("it lists {} twice", entry.name));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// A CRC as the manifest writes it: exactly 8 lowercase hex digits.
fn hex32(text: &str) -> Option<u32> {
    let digits = text.len() == 8 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    digits.then(|| u32::from_str_radix(text, 16).ok()).flatten()
}

/// The size and CRC-32 of what is left to read of `file`.
fn checksum(file: &mut File) -> std::io::Result<(u64, u32)> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok((bytes, hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
}

fn directory(manifest: &Path) -> &Path {
    match manifest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mixsac-manifest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A directory with two files and their manifest.
    fn recorded(name: &str) -> (PathBuf, PathBuf, Vec<PathBuf>) {
        let dir = scratch(name);
        let files = vec![dir.join("a.bin"), dir.join("b.json")];
        std::fs::write(&files[0], (0..=255u8).cycle().take(600).collect::<Vec<_>>()).unwrap();
        std::fs::write(&files[1], b"{\"step\": 3}").unwrap();
        let manifest = dir.join("manifest.txt");
        write(&manifest, &files).unwrap();
        (dir, manifest, files)
    }

    #[test]
    fn a_written_manifest_verifies_and_reads_as_documented() {
        let (dir, manifest, files) = recorded("ok");
        verify(&manifest, &files).unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], HEADER);
        let crc = crc32fast::hash(&std::fs::read(&files[1]).unwrap());
        assert_eq!(lines[2], format!("{crc:08x} 11 b.json"));
        let body_end = text.len() - lines[3].len() - 1;
        let own = crc32fast::hash(&text.as_bytes()[..body_end]);
        assert_eq!(lines[3], format!("{own:08x} end"));
        assert!(!dir.join("manifest.txt.tmp").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_flipped_byte_of_every_file_is_caught() {
        let (dir, manifest, files) = recorded("flip");
        for file in files.iter().chain([&manifest]) {
            let good = std::fs::read(file).unwrap();
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0xFF;
                std::fs::write(file, &bad).unwrap();
                let e = verify(&manifest, &files).unwrap_err();
                let names_it = match &e {
                    ManifestError::ChecksumMismatch { file: f, .. } => f == file,
                    ManifestError::BadManifest { manifest: m, .. } => m == file,
                    _ => false,
                };
                assert!(names_it, "byte {i} of {}: {e}", file.display());
            }
            std::fs::write(file, &good).unwrap();
        }
        verify(&manifest, &files).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn each_problem_has_its_own_error() {
        let (dir, manifest, files) = recorded("problems");
        // Cut short.
        let good = std::fs::read(&files[0]).unwrap();
        std::fs::write(&files[0], &good[..100]).unwrap();
        let e = verify(&manifest, &files).unwrap_err();
        assert!(
            matches!(
                e,
                ManifestError::SizeMismatch {
                    recorded: 600,
                    found: 100,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "{} is damaged: it has 100 bytes but {} records 600",
                files[0].display(),
                manifest.display()
            )
        );
        // Missing.
        std::fs::remove_file(&files[0]).unwrap();
        let e = verify(&manifest, &files).unwrap_err();
        assert!(
            matches!(&e, ManifestError::MissingFile { file, .. } if *file == files[0]),
            "{e}"
        );
        std::fs::write(&files[0], &good).unwrap();
        verify(&manifest, &files).unwrap();
        // A needed file the manifest does not cover.
        let extra = dir.join("c.bin");
        std::fs::write(&extra, b"c").unwrap();
        let needed = [files.clone(), vec![extra.clone()]].concat();
        let e = verify(&manifest, &needed).unwrap_err();
        assert!(
            matches!(&e, ManifestError::Unlisted { file, .. } if *file == extra),
            "{e}"
        );
        // The manifest cut short, or gone.
        let text = std::fs::read(&manifest).unwrap();
        std::fs::write(&manifest, &text[..text.len() - 4]).unwrap();
        let e = verify(&manifest, &files).unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
        std::fs::remove_file(&manifest).unwrap();
        let e = verify(&manifest, &files).unwrap_err();
        assert!(matches!(e, ManifestError::NoManifest { .. }), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
