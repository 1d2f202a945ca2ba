//! The audit journal of a sled store: where the entries of actions that write nothing else
//! (a `client_credentials` token) are made durable, one `write` and one `fdatasync` per
//! batch, before they are numbered into sled's log in large batches.
//!
//! Why not sled: sled 0.34 writes and syncs its I/O buffer (`pwrite`, `sync_file_range`, a
//! hand-off to its thread pool) at the start of every batch or transaction and again on
//! every flush, so each durable batch of a few entries cost about 200 µs of CPU on the
//! reference VM; a `write` and an `fdatasync` cost about 60 µs (README, Performance).
//!
//! The numbering transaction records how far it has read (generation and offset, in
//! `audit_state`), so after a crash numbering goes on from there: nothing twice, nothing
//! lost. Layout: `civis-journal-v1\n` ‖ generation (16 random bytes), then records of:
//! body length (u32 BE) ‖ the first 8 bytes of the body's SHA-256 ‖ body = time (unix
//! nanoseconds, u64 BE) ‖ subject flag (0, or 1 ‖ length u16 BE ‖ subject) ‖ entry bytes.
//! A torn last record (a crash in mid-write, never acknowledged) fails its checksum and
//! ends the reading. Once everything is numbered and the file has grown past
//! [`ROTATE_BYTES`], it starts again under a new generation.
//!
//! The file is grown [`PREALLOCATE`] bytes of zeros at a time, so that most appends
//! overwrite blocks that already exist: `fdatasync` then writes the data and need not
//! write the inode (the file's size is unchanged), about 40 instead of 70 µs of CPU and
//! 150 instead of 240 µs of wall time per call on the reference VM. Zeros end the reading
//! like a torn record (an empty body fails its checksum).

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::Mutex;

/// The journal's file name in the data dir.
pub const FILE_NAME: &str = "civis-audit-journal";

const MAGIC: &[u8; 17] = b"civis-journal-v1\n";
/// Where the first record starts.
pub const HEADER: u64 = MAGIC.len() as u64 + 16;

/// Once everything is numbered, a file past this size starts again.
pub const ROTATE_BYTES: u64 = 4 << 20;

/// How many bytes of zeros the file is grown by past an append that does not fit.
pub const PREALLOCATE: u64 = 1 << 20;

/// A journal failure as the store reports it.
pub fn failed(e: std::io::Error) -> super::StoreError {
    super::StoreError::Backend(super::BackendError::Failed(format!("audit journal: {e}")))
}

/// One journaled entry, and where the next record starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its time, unix nanoseconds.
    pub at: u64,
    /// Whose entry it is.
    pub subject: Option<String>,
    /// The exact entry bytes.
    pub entry: Vec<u8>,
    /// The file offset just past this record.
    pub end: u64,
}

/// The open journal file.
#[derive(Debug)]
pub struct Journal {
    file: Mutex<Open>,
}

#[derive(Debug)]
struct Open {
    file: File,
    generation: [u8; 16],
    /// Everything before this is on disk (written and synced).
    synced: u64,
    /// The file's length: zeros from `synced` to here.
    allocated: u64,
}

impl Journal {
    /// Opens (creating if absent) the journal in `dir`. A file without a valid header
    /// (new, or cut short before its header was written) is started again.
    ///
    /// # Errors
    /// I/O errors; no randomness for a new generation.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(FILE_NAME))?;
        let len = file.metadata()?.len();
        let mut header = [0u8; HEADER as usize];
        let valid = len >= HEADER && {
            file.read_exact(&mut header)?;
            header.starts_with(MAGIC)
        };
        let mut open = Open {
            file,
            generation: [0; 16],
            synced: len,
            allocated: len,
        };
        if valid {
            open.generation.copy_from_slice(&header[MAGIC.len()..]);
            // A torn tail would sit before the next append: cut the file after the last
            // whole record (with the zeros after it), so that no stale record from a torn
            // batch can follow a shorter later one.
            let whole = open
                .records_from(HEADER, usize::MAX)?
                .last()
                .map_or(HEADER, |r| r.end);
            if whole < len {
                open.file.set_len(whole)?;
                open.synced = whole;
                open.allocated = whole;
            }
        } else {
            open.restart()?;
        }
        Ok(Self {
            file: Mutex::new(open),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `entries` and returns once they are on disk.
    ///
    /// # Errors
    /// I/O errors: then nothing of the batch may be relied on (it is cut off again).
    pub fn append<'a>(
        &self,
        entries: impl Iterator<Item = (&'a [u8], Option<&'a str>, u64)>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for (entry, subject, at) in entries {
            encode(&mut buf, at, subject, entry)?;
        }
        let mut open = self.lock();
        let at = open.synced;
        let end = at + buf.len() as u64;
        // Past the zeros: grow the file by more zeros in the same write and sync.
        let allocated = if end > open.allocated {
            buf.resize(buf.len() + PREALLOCATE as usize, 0);
            end + PREALLOCATE
        } else {
            open.allocated
        };
        open.file.seek(SeekFrom::Start(at))?;
        if let Err(e) = open
            .file
            .write_all(&buf)
            .and_then(|()| open.file.sync_data())
        {
            let _ = open.file.set_len(at);
            open.allocated = at;
            return Err(e);
        }
        open.synced = end;
        open.allocated = allocated;
        Ok(())
    }

    /// The records after `offset` of generation `generation` (the whole file when the
    /// generation is another), at most `limit`, and the file's generation.
    ///
    /// # Errors
    /// I/O errors.
    pub fn unread(
        &self,
        generation: Option<[u8; 16]>,
        offset: u64,
        limit: usize,
    ) -> std::io::Result<([u8; 16], Vec<Record>)> {
        let open = self.lock();
        let from = open.start(generation, offset);
        Ok((open.generation, open.records_from(from, limit)?))
    }

    /// Once the file has grown past [`ROTATE_BYTES`]: with appends held, hands what is
    /// still unread after `offset` of `generation` to `number` (which must number it
    /// durably) and starts the file again under a new generation. Says whether it did.
    ///
    /// # Errors
    /// `number`'s error (the file is then kept), I/O errors.
    pub fn rotate(
        &self,
        generation: Option<[u8; 16]>,
        offset: u64,
        number: impl FnOnce([u8; 16], Vec<Record>) -> Result<(), super::StoreError>,
    ) -> Result<bool, super::StoreError> {
        let mut open = self.lock();
        if open.synced < ROTATE_BYTES {
            return Ok(false);
        }
        let from = open.start(generation, offset);
        let records = open.records_from(from, usize::MAX).map_err(failed)?;
        number(open.generation, records)?;
        open.restart().map_err(failed)?;
        Ok(true)
    }
}

impl Open {
    /// Where reading after `offset` of `generation` starts in this file.
    fn start(&self, generation: Option<[u8; 16]>, offset: u64) -> u64 {
        if generation == Some(self.generation) {
            offset.max(HEADER)
        } else {
            HEADER
        }
    }

    fn restart(&mut self) -> std::io::Result<()> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut self.generation)
            .map_err(|_| std::io::Error::other("no randomness for the journal's generation"))?;
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(MAGIC)?;
        self.file.write_all(&self.generation)?;
        self.file.sync_all()?;
        self.synced = HEADER;
        self.allocated = HEADER;
        Ok(())
    }

    /// The whole records from `from` up to what is synced, at most `limit`: only their
    /// bytes are read, so numbering a long journal page by page stays linear.
    fn records_from(&self, from: u64, limit: usize) -> std::io::Result<Vec<Record>> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(from))?;
        let mut reader = std::io::BufReader::new(file.take(self.synced.saturating_sub(from)));
        let mut records = Vec::new();
        let mut end = from;
        let mut bytes = Vec::new();
        while records.len() < limit {
            bytes.resize(12, 0);
            if reader.read_exact(&mut bytes).is_err() {
                break;
            }
            let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            // A torn or damaged length must not make this allocate past the file's end.
            if u64::from(len) > self.synced.saturating_sub(end + 12) {
                break;
            }
            bytes.resize(12 + len as usize, 0);
            if reader.read_exact(&mut bytes[12..]).is_err() {
                break;
            }
            let Some((at, subject, entry, used)) = next_record(&bytes) else {
                break;
            };
            end += used as u64;
            records.push(Record {
                at,
                subject,
                entry: entry.to_vec(),
                end,
            });
        }
        Ok(records)
    }
}

fn checksum(body: &[u8]) -> [u8; 8] {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let mut sum = [0; 8];
    sum.copy_from_slice(&digest.as_ref()[..8]);
    sum
}

fn encode(buf: &mut Vec<u8>, at: u64, subject: Option<&str>, entry: &[u8]) -> std::io::Result<()> {
    let too_long = || std::io::Error::other("audit entry too long for the journal");
    let mut body = Vec::with_capacity(entry.len() + 40);
    body.extend_from_slice(&at.to_be_bytes());
    match subject {
        None => body.push(0),
        Some(s) => {
            body.push(1);
            body.extend_from_slice(
                &u16::try_from(s.len())
                    .map_err(|_| too_long())?
                    .to_be_bytes(),
            );
            body.extend_from_slice(s.as_bytes());
        }
    }
    body.extend_from_slice(entry);
    buf.extend_from_slice(
        &u32::try_from(body.len())
            .map_err(|_| too_long())?
            .to_be_bytes(),
    );
    buf.extend_from_slice(&checksum(&body));
    buf.extend_from_slice(&body);
    Ok(())
}

/// The record at the start of `bytes` and how many bytes it takes; `None` when it is cut
/// short or fails its checksum.
fn next_record(bytes: &[u8]) -> Option<(u64, Option<String>, &[u8], usize)> {
    let len = usize::try_from(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?)).ok()?;
    let used = 12usize.checked_add(len)?;
    let body = bytes.get(12..used)?;
    if checksum(body) != bytes.get(4..12)? {
        return None;
    }
    let at = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
    let (subject, entry) = match body.get(8)? {
        0 => (None, body.get(9..)?),
        1 => {
            let n = usize::from(u16::from_be_bytes(body.get(9..11)?.try_into().ok()?));
            let subject = String::from_utf8(body.get(11..11 + n)?.to_vec()).ok()?;
            (Some(subject), body.get(11 + n..)?)
        }
        _ => return None,
    };
    Some((at, subject, entry, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> [(&'static [u8], Option<&'static str>, u64); 3] {
        [
            (b"{\"a\":1}", Some("c1"), 5),
            (b"{\"b\":2}", None, 6),
            (b"{\"c\":3}", Some("c2"), 7),
        ]
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        journal.append(entries().into_iter()).unwrap();
        let (generation, records) = journal.unread(None, 0, 10).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].subject.as_deref(), Some("c2"));
        assert_eq!(records[2].entry, b"{\"c\":3}");
        assert_eq!(records[2].at, 7);
        // Read from where the first record ends: the other two.
        let rest = journal
            .unread(Some(generation), records[0].end, 10)
            .unwrap();
        assert_eq!(rest.1, records[1..].to_vec());
        // A page of one.
        let page = journal.unread(Some(generation), records[0].end, 1).unwrap();
        assert_eq!(page.1, records[1..2].to_vec());
        drop(journal);

        // A torn record at the end is ignored and cut off, so appends go on after the
        // last whole record.
        let path = dir.path().join(FILE_NAME);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[0, 0, 0, 40, 1, 2, 3]).unwrap();
        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(
            reopened.unread(None, 0, 10).unwrap(),
            (generation, records.clone())
        );
        reopened.append(entries()[..1].iter().copied()).unwrap();
        assert_eq!(reopened.unread(None, 0, 10).unwrap().1.len(), 4);
        drop(reopened);

        // One flipped byte in the second record ends the reading before it.
        let mut bytes = std::fs::read(&path).unwrap();
        let second = usize::try_from(records[0].end).unwrap() + 12 + 9;
        bytes[second] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let damaged = Journal::open(dir.path()).unwrap();
        assert_eq!(
            damaged.unread(None, 0, 10).unwrap().1,
            records[..1].to_vec()
        );
    }

    #[test]
    fn appends_overwrite_zeros_and_a_stale_record_after_a_torn_one_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let journal = Journal::open(dir.path()).unwrap();
        journal.append(entries()[..1].iter().copied()).unwrap();
        let grown = std::fs::metadata(&path).unwrap().len();
        assert!(grown > PREALLOCATE, "grown by zeros: {grown}");
        journal.append(entries()[1..].iter().copied()).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            grown,
            "overwritten"
        );
        let (generation, records) = journal.unread(None, 0, 10).unwrap();
        assert_eq!(records.len(), 3);
        drop(journal);

        // A crash in mid-batch: the batch's first record torn, its second whole on disk.
        // The torn bytes are as long as the record appended after the restart, so the
        // stale whole record would follow that one exactly if it were left in the file.
        let mut later = Vec::new();
        encode(&mut later, 9, None, b"{\"d\":4}").unwrap();
        let mut stale = Vec::new();
        encode(&mut stale, 8, None, b"{\"stale\":1}").unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let end = usize::try_from(records[2].end).unwrap();
        let torn = vec![0xAB; later.len()];
        bytes[end..end + torn.len()].copy_from_slice(&torn);
        bytes[end + torn.len()..end + torn.len() + stale.len()].copy_from_slice(&stale);
        std::fs::write(&path, &bytes).unwrap();

        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(reopened.unread(None, 0, 10).unwrap().1, records);
        reopened
            .append([(&b"{\"d\":4}"[..], None, 9)].into_iter())
            .unwrap();
        drop(reopened);
        let again = Journal::open(dir.path()).unwrap();
        let (same, read) = again.unread(None, 0, 10).unwrap();
        assert_eq!(same, generation);
        assert_eq!(read.len(), 4, "the stale record is gone: {read:?}");
        assert_eq!(read[3].entry, b"{\"d\":4}");
    }

    #[test]
    fn a_large_file_starts_again_after_its_unread_records_are_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let small = |j: &Journal| j.rotate(None, 0, |_, _| panic!("not yet")).unwrap();
        journal.append(entries().into_iter()).unwrap();
        assert!(!small(&journal));
        let big = vec![b'x'; 1 << 20];
        for _ in 0..4 {
            journal.append([(&big[..], None, 0)].into_iter()).unwrap();
        }
        let (generation, records) = journal.unread(None, 0, 10).unwrap();
        // Records 0..3 were read before; the rest is handed over, then the file restarts.
        let mut handed = Vec::new();
        let rotated = journal.rotate(Some(generation), records[2].end, |g, rest| {
            assert_eq!(g, generation);
            handed = rest;
            Ok(())
        });
        assert!(rotated.unwrap());
        assert_eq!(handed, records[3..].to_vec());
        let (fresh, none) = journal.unread(Some(generation), 0, 10).unwrap();
        assert_ne!(fresh, generation);
        assert!(none.is_empty());

        // A failed hand-over keeps the file.
        for _ in 0..5 {
            journal.append([(&big[..], None, 0)].into_iter()).unwrap();
        }
        let refused = journal.rotate(None, 0, |_, _| {
            Err(super::failed(std::io::Error::other("disk full")))
        });
        assert!(refused.is_err());
        assert_eq!(journal.unread(None, 0, 10).unwrap().1.len(), 5);
    }
}
