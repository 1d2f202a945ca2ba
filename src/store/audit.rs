//! The audit log's storage: entries queued inside the transaction of the action they
//! record, numbered into the log, an index of each citizen's entries, the hashes of the
//! Merkle tree's complete subtrees, and every signed checkpoint.
//!
//! On a shared database an action's transaction only *queues* its entry under a key of its
//! own: it touches no key that another action's transaction touches, so concurrent actions
//! never conflict over the log (with PostgreSQL's serializable transactions, a shared
//! counter written by every action made most of them run again). Numbering
//! ([`Audit::number_queued`], run by the integrator and before a listing) moves queued
//! entries into the log in queue-key order, one transaction for many entries, scanning
//! from near the last entry it numbered ([`QueueCursor`]).
//!
//! On a backend that runs one transaction at a time (sled, [`super::Backend::serial`])
//! there is nothing to conflict with, and queueing would only write and move every entry
//! twice: the action's transaction numbers its entry at once (entry, subject index, `next`).
//! A queue left by another backend is still numbered before anything is listed or
//! integrated, which the service does before its first request.
//!
//! Entries are kept as the exact bytes that are hashed (no version envelope: the log's
//! promise is that those bytes never change); the entry JSON itself names its `event`.
//! Keys are big-endian so that key order is index order. Layout:
//! - `audit_queue`: entry time (unix nanoseconds, u64 BE) ‖ the transaction's tag (16
//!   bytes, unique per transaction attempt: `Store::transact`) ‖ position in the
//!   transaction (u32 BE) → `0` ‖ entry bytes, or `1` ‖ subject length (u16 BE) ‖ subject ‖
//!   entry bytes;
//! - `audit_entries`: index (u64 BE) → entry bytes;
//! - `audit_subjects`: `{subject}/` + index (u64 BE) → nothing;
//! - `audit_hashes`: level (u8) + tile number (u64 BE) → the hashes of up to [`TILE`]
//!   consecutive complete subtrees of that level, 32 bytes each, where the subtree
//!   `(level, index)` covers leaves `[index·2^level, (index+1)·2^level)` and sits in tile
//!   `index / TILE` at position `index % TILE`: about 2n hashes for n entries, in about
//!   2n / TILE records (one record per hash made integration write a sled key per hash);
//! - `audit_checkpoints`: tree size (u64 BE) → the signed note published at that size;
//! - `audit_state`: `next` (entries numbered), `integrated` (entries in the tree),
//!   `verifier` (the checkpoint key, signed-note form, fixed at the first checkpoint),
//!   `journal` (the audit journal's generation and how far it is numbered: 16 bytes ‖ u64
//!   BE).
//!
//! On sled, [`Store::append_audit`] makes its entries durable in the journal
//! ([`super::journal`]) rather than in sled; [`Store::number_journal`] numbers them into
//! the log, in one transaction per page that also records how far it read.

use super::tx::Read;
use super::{Result, Store, StoreError, Tx};

/// Entries waiting to be numbered.
pub const AUDIT_QUEUE: &str = "audit_queue";
/// Entries by index.
pub const AUDIT_ENTRIES: &str = "audit_entries";
/// Each subject's entries.
pub const AUDIT_SUBJECTS: &str = "audit_subjects";
/// Hashes of complete subtrees.
pub const AUDIT_HASHES: &str = "audit_hashes";
/// Signed checkpoints by tree size.
pub const AUDIT_CHECKPOINTS: &str = "audit_checkpoints";
/// Counters and the checkpoint key.
pub const AUDIT_STATE: &str = "audit_state";

const NEXT: &[u8] = b"next";
const INTEGRATED: &[u8] = b"integrated";
const VERIFIER: &[u8] = b"verifier";
const JOURNAL: &[u8] = b"journal";

/// Largest page any listing reads at once.
pub const MAX_PAGE: usize = 1000;

/// How far before the time of the last entry it numbered a scan of the queue starts.
/// Entries are numbered as their transactions commit, and a transaction commits shortly
/// after its entries' time; only one slower than this (or from a process whose clock is
/// further behind) waits for the next sweep.
const QUEUE_WINDOW_NANOS: u64 = 2_000_000_000;

/// How often a scan of the queue starts at its beginning instead (the sweep), so that no
/// entry behind the cursor waits longer.
const QUEUE_SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the next scan of the queue starts. Numbered entries are deleted from the queue,
/// and on PostgreSQL a deleted row stays in the index until vacuum: a scan from the
/// queue's beginning walks every entry numbered since, which made integrating a backlog
/// of 2·10⁷ entries slow down from 13 000 to 3 700 entries/s. Scans start a short window
/// before the last entry numbered, with a sweep from the beginning every [`QUEUE_SWEEP`].
#[derive(Debug, Default)]
pub(super) struct QueueCursor {
    from: Vec<u8>,
    swept: Option<std::time::Instant>,
}

impl QueueCursor {
    /// Where a scan at `now` starts: the beginning when a sweep is due.
    fn start(&mut self, now: std::time::Instant) -> Vec<u8> {
        match self.swept {
            Some(at) if now.saturating_duration_since(at) < QUEUE_SWEEP => self.from.clone(),
            _ => {
                self.swept = Some(now);
                Vec::new()
            }
        }
    }

    /// Moves the cursor to the window before queue key `last`, never backwards (a sweep
    /// numbers stragglers older than entries numbered before it).
    fn numbered_up_to(&mut self, last: &[u8]) {
        let at = last
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        let from = at.saturating_sub(QUEUE_WINDOW_NANOS).to_be_bytes().to_vec();
        if from > self.from {
            self.from = from;
        }
    }
}

/// The cursor, even if a thread panicked holding it (it is only a starting point).
fn lock(cursor: &std::sync::Mutex<QueueCursor>) -> std::sync::MutexGuard<'_, QueueCursor> {
    cursor
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The audit log in the committed store or in a transaction.
pub struct Audit<S>(S);

impl Store {
    /// The committed audit log.
    pub fn audit(&self) -> Audit<&Self> {
        Audit(self)
    }

    /// Appends the entries of actions that write nothing else (`client_credentials`
    /// tokens) and returns once they are durable: on sled into the journal, one `fdatasync`
    /// ([`super::journal`]), numbered into the log later by [`Store::number_journal`];
    /// elsewhere in one transaction.
    ///
    /// # Errors
    /// Backend and journal errors: then none of `entries` may be relied on.
    pub fn append_audit(&self, entries: &[NewEntry<'_>]) -> Result<()> {
        let Some(journal) = &self.journal else {
            return self.transact(|tx| {
                entries
                    .iter()
                    .try_for_each(|e| tx.audit().append(e.bytes, e.subject, e.at))
            });
        };
        // Like every store call, refused on an async worker thread.
        self.io()?;
        journal
            .append(entries.iter().map(|e| (e.bytes, e.subject, e.at)))
            .map_err(super::journal::failed)
    }

    /// Numbers the journal's entries into the log in journal order, a page per
    /// transaction that also records how far it read, at most [`JOURNAL_PAGES`] pages;
    /// then starts a large journal again. Run at open, by the integrator and before a
    /// listing. Returns how many it numbered.
    ///
    /// # Errors
    /// Backend and journal errors.
    pub fn number_journal(&self) -> Result<u64> {
        let Some(journal) = &self.journal else {
            return Ok(0);
        };
        // One numbering at a time in this process (sled admits one process).
        let _one = self
            .journal_reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut numbered = 0;
        // Read once; each page's transaction then records where the next one starts.
        let mut read = self.audit().journal_read()?;
        for _ in 0..JOURNAL_PAGES {
            let (generation, records) = journal
                .unread(read.map(|r| r.0), read.map_or(0, |r| r.1), MAX_PAGE)
                .map_err(super::journal::failed)?;
            let Some(end) = records.last().map(|r| r.end) else {
                break;
            };
            numbered += self.number_records(generation, &records)?;
            read = Some((generation, end));
        }
        journal.rotate(
            read.map(|r| r.0),
            read.map_or(0, |r| r.1),
            |generation, rest| {
                numbered += self.number_records(generation, &rest)?;
                Ok(())
            },
        )?;
        Ok(numbered)
    }

    /// Numbers `records` of the journal of `generation` in one transaction, with how far
    /// that has read it.
    fn number_records(
        &self,
        generation: [u8; 16],
        records: &[super::journal::Record],
    ) -> Result<u64> {
        let Some(end) = records.last().map(|r| r.end) else {
            return Ok(0);
        };
        self.transact(|tx| {
            for r in records {
                tx.audit().append(&r.entry, r.subject.as_deref(), r.at)?;
            }
            let mut state = generation.to_vec();
            state.extend_from_slice(&end.to_be_bytes());
            tx.put_raw(AUDIT_STATE, JOURNAL, state);
            Ok::<_, StoreError>(())
        })?;
        Ok(records.len() as u64)
    }
}

/// Most pages of the journal one call of [`Store::number_journal`] numbers.
pub const JOURNAL_PAGES: usize = 100;

/// An entry for [`Store::append_audit`].
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    /// The exact entry bytes.
    pub bytes: &'a [u8],
    /// Whose entry it is.
    pub subject: Option<&'a str>,
    /// Its time, unix nanoseconds.
    pub at: u64,
}

impl<'a> Tx<'a> {
    /// The audit log in this transaction.
    pub fn audit(&mut self) -> Audit<&mut Tx<'a>> {
        Audit(self)
    }
}

fn corrupt(tree: &'static str, key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt {
        tree,
        key: super::record::printable_key(key),
        reason: reason.into(),
    }
}

fn counter(bytes: Option<Vec<u8>>, key: &[u8]) -> Result<u64> {
    match bytes {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt(AUDIT_STATE, key, "not a 64-bit counter")),
    }
}

/// Hashes per record of `audit_hashes`: few enough that a proof's reads stay small (512
/// bytes each), many enough that integration writes a record per 16 hashes.
pub const TILE: u64 = 16;

/// The record holding subtree `(level, index)`, and the hash's byte offset in it.
fn tile_of(level: u8, index: u64) -> ([u8; 9], usize) {
    let mut key = [0; 9];
    key[0] = level;
    key[1..].copy_from_slice(&(index / TILE).to_be_bytes());
    // < TILE · 32: fits any usize.
    let offset = usize::try_from(index % TILE).unwrap_or(0) * 32;
    (key, offset)
}

fn subject_prefix(subject: &str) -> Vec<u8> {
    let mut prefix = subject.as_bytes().to_vec();
    prefix.push(b'/');
    prefix
}

impl<S: Read> Audit<S> {
    /// How many entries were appended (the next entry's index).
    ///
    /// # Errors
    /// Backend and decoding errors.
    pub fn appended(&self) -> Result<u64> {
        counter(self.0.raw(AUDIT_STATE, NEXT)?, NEXT)
    }

    /// How far [`Store::number_journal`] has read the journal: its generation and offset.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] when the record is not 24 bytes.
    pub fn journal_read(&self) -> Result<Option<([u8; 16], u64)>> {
        let Some(bytes) = self.0.raw(AUDIT_STATE, JOURNAL)? else {
            return Ok(None);
        };
        let (generation, offset) = bytes
            .split_first_chunk::<16>()
            .and_then(|(g, rest)| Some((*g, u64::from_be_bytes(rest.try_into().ok()?))))
            .ok_or_else(|| corrupt(AUDIT_STATE, JOURNAL, "not a generation and an offset"))?;
        Ok(Some((generation, offset)))
    }

    /// How many entries the integrator has put into the tree.
    ///
    /// # Errors
    /// Backend and decoding errors.
    pub fn integrated(&self) -> Result<u64> {
        counter(self.0.raw(AUDIT_STATE, INTEGRATED)?, INTEGRATED)
    }

    /// The hash of a complete subtree the integrator stored.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when it is missing or not 32 bytes (the tree's state and its
    /// hashes are written together, so a gap is damage).
    pub fn subtree(&self, level: u8, index: u64) -> Result<[u8; 32]> {
        let tile = self.0.raw(AUDIT_HASHES, &tile_of(level, index).0)?;
        hash_at(tile.as_deref(), level, index)
    }

    /// The checkpoint key in signed-note form, once the first checkpoint fixed it.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] when it is not UTF-8.
    pub fn verifier(&self) -> Result<Option<String>> {
        self.0
            .raw(AUDIT_STATE, VERIFIER)?
            .map(|b| String::from_utf8(b).map_err(|_| corrupt(AUDIT_STATE, VERIFIER, "not UTF-8")))
            .transpose()
    }
}

/// The hash of subtree `(level, index)` in its tile (`None`: no such tile).
fn hash_at(tile: Option<&[u8]>, level: u8, index: u64) -> Result<[u8; 32]> {
    let (key, offset) = tile_of(level, index);
    tile.and_then(|t| t.get(offset..offset + 32))
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
        .ok_or_else(|| {
            corrupt(
                AUDIT_HASHES,
                &key,
                &format!("missing subtree hash ({level}, {index})"),
            )
        })
}

/// A queued entry's subject and exact bytes.
fn decode_queued(key: &[u8], value: &[u8]) -> Result<(Option<String>, Vec<u8>)> {
    let bad = |why| corrupt(AUDIT_QUEUE, key, why);
    match value.split_first() {
        Some((0, entry)) => Ok((None, entry.to_vec())),
        Some((1, rest)) if rest.len() >= 2 => {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let subject = rest
                .get(2..2 + len)
                .ok_or_else(|| bad("subject longer than the record"))?;
            let subject =
                String::from_utf8(subject.to_vec()).map_err(|_| bad("subject not UTF-8"))?;
            Ok((Some(subject), rest[2 + len..].to_vec()))
        }
        _ => Err(bad("not a queued entry")),
    }
}

impl Audit<&mut Tx<'_>> {
    /// Appends one entry (its exact bytes) of time `at` (unix nanoseconds), filed under its
    /// subject. On a serial backend it is numbered at once, in commit order; otherwise it
    /// is queued (one key written, none read) and numbered later in time order, those of
    /// one transaction with the same time in call order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a subject longer than 65 535 bytes.
    pub fn append(&mut self, entry: &[u8], subject: Option<&str>, at: u64) -> Result<()> {
        if self.0.serial() {
            let index = self.appended()?;
            let next = self.place(index, entry.to_vec(), subject.map(str::to_owned))?;
            self.0
                .put_raw(AUDIT_STATE, NEXT, next.to_be_bytes().to_vec());
            return Ok(());
        }
        // New by construction, so no read: the transaction's tag is unique, and the
        // position orders and separates its own entries.
        let position = u32::try_from(self.0.staged_len(AUDIT_QUEUE)).unwrap_or(u32::MAX);
        let mut key = Vec::with_capacity(28);
        key.extend_from_slice(&at.to_be_bytes());
        key.extend_from_slice(&self.0.tag());
        key.extend_from_slice(&position.to_be_bytes());
        let mut value = Vec::with_capacity(entry.len() + 3);
        match subject {
            None => value.push(0),
            Some(s) => {
                let len = u16::try_from(s.len())
                    .map_err(|_| corrupt(AUDIT_QUEUE, &key, "subject too long"))?;
                value.push(1);
                value.extend_from_slice(&len.to_be_bytes());
                value.extend_from_slice(s.as_bytes());
            }
        }
        value.extend_from_slice(entry);
        self.0.put_raw(AUDIT_QUEUE, &key, value);
        Ok(())
    }

    /// Numbers the queued entries under `keys` (read from the queue), in that order:
    /// each moves into the log with the next index and is filed under its subject. Keys no
    /// longer queued (numbered meanwhile by another process) are skipped. Returns how many
    /// were numbered.
    ///
    /// # Errors
    /// Backend and decoding errors.
    pub fn number(&mut self, keys: &[Vec<u8>]) -> Result<u64> {
        let first = self.appended()?;
        let mut next = first;
        // One read for the whole page: on a shared database, one round trip, not one per key.
        let values = self.0.raw_many(AUDIT_QUEUE, keys)?;
        for (key, value) in keys.iter().zip(values) {
            let Some(value) = value else {
                continue;
            };
            let (subject, entry) = decode_queued(key, &value)?;
            next = self.place(next, entry, subject)?;
            self.0.delete(AUDIT_QUEUE, key);
        }
        if next != first {
            self.0
                .put_raw(AUDIT_STATE, NEXT, next.to_be_bytes().to_vec());
        }
        Ok(next - first)
    }

    /// Stages `entry` as entry `index`, filed under its subject; returns the next index.
    fn place(&mut self, index: u64, entry: Vec<u8>, subject: Option<String>) -> Result<u64> {
        self.0.put_raw(AUDIT_ENTRIES, &index.to_be_bytes(), entry);
        if let Some(subject) = subject {
            let mut index_key = subject_prefix(&subject);
            index_key.extend_from_slice(&index.to_be_bytes());
            self.0.put_raw(AUDIT_SUBJECTS, &index_key, Vec::new());
        }
        index
            .checked_add(1)
            .ok_or_else(|| corrupt(AUDIT_STATE, NEXT, "counter overflow"))
    }

    /// Stores hashes of subtrees that became complete, each tile written once.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] when a tile is not a whole number of hashes.
    pub fn put_subtrees(&mut self, hashes: &[(u8, u64, [u8; 32])]) -> Result<()> {
        let mut tiles: std::collections::BTreeMap<[u8; 9], Vec<(usize, &[u8; 32])>> =
            std::collections::BTreeMap::new();
        for (level, index, hash) in hashes {
            let (key, offset) = tile_of(*level, *index);
            tiles.entry(key).or_default().push((offset, hash));
        }
        for (key, updates) in tiles {
            let mut tile = self.0.raw(AUDIT_HASHES, &key)?.unwrap_or_default();
            if tile.len() % 32 != 0 {
                return Err(corrupt(AUDIT_HASHES, &key, "not a list of 32-byte hashes"));
            }
            for (offset, hash) in updates {
                if tile.len() < offset + 32 {
                    // Hashes complete left to right; a gap would only be zeros until filled.
                    tile.resize(offset + 32, 0);
                }
                tile[offset..offset + 32].copy_from_slice(hash);
            }
            self.0.put_raw(AUDIT_HASHES, &key, tile);
        }
        Ok(())
    }

    /// Records that the tree now holds the first `size` entries, with its checkpoint.
    pub fn put_checkpoint(&mut self, size: u64, note: &str) {
        self.0
            .put_raw(AUDIT_STATE, INTEGRATED, size.to_be_bytes().to_vec());
        self.0.put_raw(
            AUDIT_CHECKPOINTS,
            &size.to_be_bytes(),
            note.as_bytes().to_vec(),
        );
    }

    /// Fixes the checkpoint key (at the first checkpoint).
    pub fn put_verifier(&mut self, verifier: &str) {
        self.0
            .put_raw(AUDIT_STATE, VERIFIER, verifier.as_bytes().to_vec());
    }
}

impl Audit<&Store> {
    /// Numbers up to `limit` (at most [`MAX_PAGE`]) queued entries, in numbering order, in
    /// one transaction. Returns how many queued keys the scan found (fewer than `limit`:
    /// nothing more is waiting above the cursor) and how many of them this call numbered
    /// (another process may have numbered some first).
    ///
    /// # Errors
    /// Backend and decoding errors.
    pub fn number_queued(&self, limit: usize) -> Result<(usize, u64)> {
        self.number_queued_at(limit, std::time::Instant::now())
    }

    fn number_queued_at(&self, limit: usize, now: std::time::Instant) -> Result<(usize, u64)> {
        let start = lock(&self.0.queue_cursor).start(now);
        let page = self
            .0
            .backend()?
            .scan(AUDIT_QUEUE, b"", &start, limit.min(MAX_PAGE))?;
        let keys: Vec<Vec<u8>> = page.into_iter().map(|(key, _)| key).collect();
        let Some(last) = keys.last() else {
            return Ok((0, 0));
        };
        let numbered = self.0.transact(|tx| tx.audit().number(&keys))?;
        lock(&self.0.queue_cursor).numbered_up_to(last);
        Ok((keys.len(), numbered))
    }

    /// The hashes of several complete subtrees, in the order asked, their tiles read
    /// together (one round trip on a shared database, where a proof's twenty-odd reads
    /// one at a time were most of its cost).
    ///
    /// # Errors
    /// As [`Audit::subtree`].
    pub fn subtrees(&self, wanted: &[(u8, u64)]) -> Result<Vec<[u8; 32]>> {
        let mut keys: Vec<Vec<u8>> = wanted
            .iter()
            .map(|&(l, i)| tile_of(l, i).0.to_vec())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let tiles: std::collections::HashMap<Vec<u8>, Vec<u8>> = keys
            .iter()
            .cloned()
            .zip(self.0.backend()?.get_many(AUDIT_HASHES, &keys)?)
            .filter_map(|(key, tile)| Some((key, tile?)))
            .collect();
        wanted
            .iter()
            .map(|&(level, index)| {
                let tile = tiles.get(tile_of(level, index).0.as_slice());
                hash_at(tile.map(Vec::as_slice), level, index)
            })
            .collect()
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) entries from index `from` on, in index order.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for a key that is not an index.
    pub fn entries(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let page =
            self.0
                .backend()?
                .scan(AUDIT_ENTRIES, b"", &from.to_be_bytes(), limit.min(MAX_PAGE))?;
        page.into_iter()
            .map(|(key, value)| Ok((index_of(AUDIT_ENTRIES, &key)?, value)))
            .collect()
    }

    /// One entry's bytes.
    ///
    /// # Errors
    /// Backend errors.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.0.raw(AUDIT_ENTRIES, &index.to_be_bytes())
    }

    /// The indices of `subject`'s entries from index `from` on, up to `limit` (at most
    /// [`MAX_PAGE`]), in index order.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for a malformed key.
    pub fn subject_indices(&self, subject: &str, from: u64, limit: usize) -> Result<Vec<u64>> {
        let prefix = subject_prefix(subject);
        let mut start = prefix.clone();
        start.extend_from_slice(&from.to_be_bytes());
        let page = self
            .0
            .backend()?
            .scan(AUDIT_SUBJECTS, &prefix, &start, limit.min(MAX_PAGE))?;
        page.into_iter()
            .map(|(key, _)| index_of(AUDIT_SUBJECTS, &key[prefix.len()..]))
            .collect()
    }

    /// The latest checkpoint: its tree size and signed note.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for a malformed record.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, String)>> {
        let size = self.integrated()?;
        let key = size.to_be_bytes();
        match self.0.raw(AUDIT_CHECKPOINTS, &key)? {
            None if size == 0 => Ok(None),
            None => Err(corrupt(
                AUDIT_CHECKPOINTS,
                &key,
                "missing latest checkpoint",
            )),
            Some(note) => String::from_utf8(note)
                .map(|n| Some((size, n)))
                .map_err(|_| corrupt(AUDIT_CHECKPOINTS, &key, "not UTF-8")),
        }
    }

    /// Up to `limit` stored checkpoints with tree size ≥ `from`, in size order.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for a malformed record.
    pub fn checkpoints(&self, from: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let page = self.0.backend()?.scan(
            AUDIT_CHECKPOINTS,
            b"",
            &from.to_be_bytes(),
            limit.min(MAX_PAGE),
        )?;
        page.into_iter()
            .map(|(key, note)| {
                let size = index_of(AUDIT_CHECKPOINTS, &key)?;
                let note = String::from_utf8(note)
                    .map_err(|_| corrupt(AUDIT_CHECKPOINTS, &key, "not UTF-8"))?;
                Ok((size, note))
            })
            .collect()
    }
}

fn index_of(tree: &'static str, key: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(tree, key, "not a 64-bit index"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(store: &Store, entry: &str, subject: Option<&str>) {
        store
            .transact(|tx| tx.audit().append(entry.as_bytes(), subject, 1_700_000_000))
            .unwrap();
    }

    fn number(store: &Store) -> u64 {
        store.audit().number_queued(MAX_PAGE).unwrap().1
    }

    /// The keys of every queued entry.
    fn queued(store: &Store) -> Vec<Vec<u8>> {
        let page = store
            .backend()
            .unwrap()
            .scan(AUDIT_QUEUE, b"", b"", MAX_PAGE);
        page.unwrap().into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn entries_are_numbered_from_zero_and_listed_in_order() {
        let store = Store::in_memory();
        assert_eq!(store.audit().appended().unwrap(), 0);
        append(&store, "a", Some("c1"));
        assert_eq!(store.audit().appended().unwrap(), 0, "queued, not numbered");
        assert_eq!(number(&store), 1);
        store
            .transact(|tx| {
                tx.audit().append(b"b", None, 1_700_000_001)?;
                tx.audit().append(b"c", Some("c2"), 1_700_000_001)?;
                tx.audit().append(b"d", Some("c1"), 1_700_000_001)
            })
            .unwrap();
        assert_eq!(number(&store), 3);
        assert_eq!(number(&store), 0, "nothing left to number");
        assert_eq!(store.audit().appended().unwrap(), 4);
        let all = store.audit().entries(0, 10).unwrap();
        let bytes: Vec<&[u8]> = all.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(
            bytes,
            [b"a", b"b", b"c", b"d"],
            "one transaction's in call order"
        );
        assert_eq!(store.audit().entries(2, 1).unwrap()[0].0, 2);
        assert_eq!(store.audit().subject_indices("c1", 0, 10).unwrap(), [0, 3]);
        assert_eq!(store.audit().subject_indices("c1", 1, 10).unwrap(), [3]);
        assert_eq!(
            store.audit().subject_indices("c", 0, 10).unwrap(),
            [] as [u64; 0]
        );
    }

    #[test]
    fn equal_entries_at_the_same_time_are_both_kept() {
        let store = Store::in_memory();
        append(&store, "same", None);
        append(&store, "same", None);
        assert_eq!(number(&store), 2);
    }

    #[test]
    fn numbering_twice_from_the_same_queue_numbers_each_entry_once() {
        let store = Store::in_memory();
        append(&store, "a", None);
        append(&store, "b", Some("c1"));
        let keys = queued(&store);
        assert_eq!(store.transact(|tx| tx.audit().number(&keys)).unwrap(), 2);
        // Another process that read the same keys before the first numbered them.
        assert_eq!(store.transact(|tx| tx.audit().number(&keys)).unwrap(), 0);
        assert_eq!(store.audit().appended().unwrap(), 2);
        assert!(queued(&store).is_empty());
    }

    #[test]
    fn scans_start_near_the_last_entry_numbered_and_a_sweep_finds_stragglers() {
        const SECOND: u64 = 1_000_000_000;
        let store = Store::in_memory();
        let at = |entry: &str, time: u64| {
            store
                .transact(|tx| tx.audit().append(entry.as_bytes(), None, time))
                .unwrap();
        };
        let t0 = std::time::Instant::now();
        let number_at = |after: u64| {
            let now = t0 + std::time::Duration::from_secs(after);
            store.audit().number_queued_at(MAX_PAGE, now).unwrap()
        };
        at("first", 100 * SECOND);
        assert_eq!(number_at(0), (1, 1));
        // Committed late: one within the window before the last numbered entry, one behind it.
        at("behind", 50 * SECOND);
        at("within", 99 * SECOND);
        assert_eq!(number_at(1), (1, 1), "only the one within the window");
        assert_eq!(
            number_at(4),
            (0, 0),
            "the cursor skips the straggler until a sweep"
        );
        assert_eq!(number_at(5), (1, 1), "the sweep numbers it");
        at("also behind", 97 * SECOND);
        assert_eq!(
            number_at(6),
            (0, 0),
            "the sweep did not move the cursor back"
        );
        assert_eq!(number_at(10), (1, 1));
        let bytes: Vec<Vec<u8>> = store
            .audit()
            .entries(0, 10)
            .unwrap()
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        assert_eq!(bytes, [&b"first"[..], b"within", b"behind", b"also behind"]);
    }

    #[test]
    fn an_aborted_transaction_appends_nothing() {
        let store = Store::in_memory();
        let failed: std::result::Result<(), StoreError> = store.transact(|tx| {
            tx.audit().append(b"x", Some("c1"), 1_700_000_000)?;
            Err(StoreError::Conflict {
                tree: AUDIT_ENTRIES,
                key: "test".into(),
            })
        });
        assert!(failed.is_err());
        assert!(queued(&store).is_empty());
        assert_eq!(store.audit().appended().unwrap(), 0);
        assert!(store.audit().entries(0, 10).unwrap().is_empty());
        assert!(
            store
                .audit()
                .subject_indices("c1", 0, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn checkpoints_and_subtrees_round_trip() {
        let store = Store::in_memory();
        assert_eq!(store.audit().latest_checkpoint().unwrap(), None);
        store
            .transact(|tx| {
                tx.audit()
                    .put_subtrees(&[(0, 0, [7; 32]), (1, 0, [9; 32])])?;
                tx.audit().put_checkpoint(2, "note 2\n");
                tx.audit().put_verifier("k+00000000+AA");
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let audit = store.audit();
        assert_eq!(audit.subtree(1, 0).unwrap(), [9; 32]);
        assert_eq!(
            audit.subtrees(&[(1, 0), (0, 0), (1, 0)]).unwrap(),
            [[9; 32], [7; 32], [9; 32]],
            "in the order asked, one tile read once"
        );
        assert!(matches!(
            audit.subtrees(&[(0, 0), (0, 1)]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            audit.subtree(0, 1),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(
            audit.latest_checkpoint().unwrap(),
            Some((2, "note 2\n".into()))
        );
        assert_eq!(audit.checkpoints(0, 10).unwrap().len(), 1);
        assert_eq!(audit.verifier().unwrap().as_deref(), Some("k+00000000+AA"));
    }
}
