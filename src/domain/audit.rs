//! Audit events: what each security event records, turned into the exact bytes of a log
//! entry and appended inside the transaction of the action itself (CONTRACT.md §7), so an
//! acknowledged action always has its entry and a failed one never does.
//!
//! An entry is one JSON object: `time` (RFC 3339 UTC), `event`, `actor`, `subject` (the
//! citizen's id, or null), `details` (never a secret, token, code or key) and a random
//! `salt` (so that an entry's hash, which is public through proofs, reveals nothing by
//! guessing its content). The event types are listed in SECURITY.md.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::{Result, Rng, random_bytes};
use crate::store::{MAX_AUDIT_PAGE as MAX_PAGE, NewEntry, Store, StoreError, Tx};

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// The registration officer or operator, through the admin API.
    Admin,
    /// A citizen, by id.
    Citizen(&'a str),
    /// An agency client, by client id.
    Client(&'a str),
    /// Someone not identified (a failed login with an unknown passkey).
    Anonymous,
    /// civis itself.
    System,
}

impl Serialize for Actor<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Admin => s.serialize_str("admin"),
            Self::Citizen(id) => s.collect_str(&format_args!("citizen:{id}")),
            Self::Client(id) => s.collect_str(&format_args!("client:{id}")),
            Self::Anonymous => s.serialize_str("anonymous"),
            Self::System => s.serialize_str("system"),
        }
    }
}

/// Every event type: the `event` field of an entry.
pub mod event {
    /// An officer registered a citizen (an enrolment code was issued with it).
    pub const CITIZEN_REGISTERED: &str = "citizen.registered";
    /// An officer issued a new enrolment code; the previous one stopped working.
    pub const ENROLMENT_CODE_ISSUED: &str = "enrolment_code.issued";
    /// A citizen enrolled a passkey.
    pub const PASSKEY_ADDED: &str = "passkey.added";
    /// A passkey was revoked (its sessions and grants end with it).
    pub const PASSKEY_REVOKED: &str = "passkey.revoked";
    /// A passkey login succeeded.
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    /// A passkey login failed after the authenticator answered.
    pub const LOGIN_FAILED: &str = "login.failed";
    /// A citizen allowed a client to receive claims.
    pub const CONSENT_GIVEN: &str = "consent.given";
    /// A citizen withdrew a consent (the client's grants end with it).
    pub const CONSENT_WITHDRAWN: &str = "consent.withdrawn";
    /// Tokens were issued at `/token`.
    pub const TOKENS_ISSUED: &str = "tokens.issued";
    /// A grant (its refresh and access tokens) was revoked.
    pub const GRANT_REVOKED: &str = "grant.revoked";
    /// A client revoked one of its own access tokens that belongs to no grant.
    pub const TOKEN_REVOKED: &str = "token.revoked";
    /// An agency client was registered.
    pub const CLIENT_REGISTERED: &str = "client.registered";
    /// An official's key and certificate were created.
    pub const OFFICIAL_CREATED: &str = "official.created";
    /// An official's key was revoked.
    pub const OFFICIAL_REVOKED: &str = "official.revoked";
    /// An organisation's e-seal was created.
    pub const SEAL_CREATED: &str = "seal.created";
    /// An e-seal was revoked.
    pub const SEAL_REVOKED: &str = "seal.revoked";
    /// An agency client asked an official to sign documents.
    pub const SIGN_REQUESTED: &str = "sign_request.created";
    /// An official's passkey approved a sign request and the documents were signed.
    pub const SIGNATURE_PRODUCED: &str = "signature.produced";
    /// An agency sealed a batch of documents.
    pub const SEAL_USED: &str = "seal.used";

    /// All of them, for documentation tests.
    pub const ALL: &[&str] = &[
        CITIZEN_REGISTERED,
        ENROLMENT_CODE_ISSUED,
        PASSKEY_ADDED,
        PASSKEY_REVOKED,
        LOGIN_SUCCEEDED,
        LOGIN_FAILED,
        CONSENT_GIVEN,
        CONSENT_WITHDRAWN,
        TOKENS_ISSUED,
        GRANT_REVOKED,
        TOKEN_REVOKED,
        CLIENT_REGISTERED,
        OFFICIAL_CREATED,
        OFFICIAL_REVOKED,
        SEAL_CREATED,
        SEAL_REVOKED,
        SIGN_REQUESTED,
        SIGNATURE_PRODUCED,
        SEAL_USED,
    ];
}

/// One entry, ready to append: its exact bytes and the subject it is filed under.
#[derive(Debug, Clone)]
pub struct Entry {
    bytes: Vec<u8>,
    subject: Option<String>,
    /// Its time in unix nanoseconds: orders the queue, so that an action acknowledged
    /// before another began is numbered before it.
    at: u64,
}

#[derive(Serialize)]
struct Json<'a> {
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    event: &'static str,
    actor: Actor<'a>,
    subject: Option<&'a str>,
    details: &'a Value,
    salt: &'a str,
}

/// An entry's random salt, drawn before a transaction whose entry is only known inside it.
#[derive(Debug, Clone)]
pub struct Salt(String);

impl Salt {
    /// 128 random bits.
    ///
    /// # Errors
    /// [`super::DomainError::Internal`] when the random generator fails.
    pub fn new(rng: &dyn Rng) -> Result<Self> {
        use base64::Engine as _;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>(rng)?),
        ))
    }
}

impl Entry {
    /// The entry for `event`, done by `actor` about `subject` at `now`.
    ///
    /// # Errors
    /// [`super::DomainError::Internal`] when the random generator fails.
    pub fn new(
        event: &'static str,
        actor: Actor<'_>,
        subject: Option<&str>,
        details: Value,
        now: OffsetDateTime,
        rng: &dyn Rng,
    ) -> Result<Self> {
        Ok(Self::salted(
            event,
            actor,
            subject,
            &details,
            now,
            &Salt::new(rng)?,
        ))
    }

    /// The same with a salt drawn earlier (inside a transaction, where the generator is
    /// not at hand).
    pub fn salted(
        event: &'static str,
        actor: Actor<'_>,
        subject: Option<&str>,
        details: &Value,
        now: OffsetDateTime,
        salt: &Salt,
    ) -> Self {
        let at = u64::try_from(now.unix_timestamp_nanos()).unwrap_or(0);
        let json = Json {
            time: now.to_offset(time::UtcOffset::UTC),
            event,
            actor,
            subject,
            details,
            salt: &salt.0,
        };
        // Strings, a JSON value and a clock's time (years 0–9999): serialising to memory
        // cannot fail; the store's records rely on the same (`store::record::encode`).
        let bytes = serde_json::to_vec(&json).unwrap_or_else(|_| b"{}".to_vec());
        Self {
            bytes,
            subject: subject.map(str::to_owned),
            at,
        }
    }

    /// Appends it to the log in `tx` (queued there; [`settle`] numbers it).
    ///
    /// # Errors
    /// Storage errors (the caller's transaction then aborts).
    pub fn append(&self, tx: &mut Tx<'_>) -> std::result::Result<(), StoreError> {
        tx.audit()
            .append(&self.bytes, self.subject.as_deref(), self.at)
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Appends entries of actions that write nothing else (a `client_credentials` token) for
/// many requests at once: one thread takes whatever is queued, appends it durably with one
/// call of [`Store::append_audit`] (on sled, one journal `write` and `fdatasync`) and
/// answers each caller. The callers wait without holding a thread.
#[derive(Debug)]
pub struct Appender {
    queue: tokio::sync::mpsc::UnboundedSender<Queued>,
}

type Queued = (
    Entry,
    tokio::sync::oneshot::Sender<std::result::Result<(), StoreError>>,
);

/// Most entries one transaction of the [`Appender`] takes.
const APPEND_BATCH: usize = 1000;

impl Appender {
    /// Starts the appending thread; it ends when the last sender is dropped.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(store: Store) -> std::io::Result<Self> {
        let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Queued>();
        std::thread::Builder::new()
            .name("civis-audit".into())
            .spawn(move || {
                while let Some(first) = queued.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < APPEND_BATCH {
                        match queued.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let entries: Vec<NewEntry<'_>> = batch
                        .iter()
                        .map(|(entry, _)| NewEntry {
                            bytes: &entry.bytes,
                            subject: entry.subject.as_deref(),
                            at: entry.at,
                        })
                        .collect();
                    let appended = store.append_audit(&entries);
                    match appended {
                        Ok(()) => {
                            for (_, answer) in batch {
                                let _ = answer.send(Ok(()));
                            }
                        }
                        Err(e) => {
                            // Each waiting request gets the batch's error, with its kind
                            // (an unreachable database stays a 503).
                            let text = e.to_string();
                            let kind = if e.is_unavailable() {
                                crate::store::BackendError::Unavailable
                            } else {
                                crate::store::BackendError::Failed
                            };
                            for (_, answer) in batch {
                                let _ = answer.send(Err(StoreError::Backend(kind(text.clone()))));
                            }
                        }
                    }
                }
            })?;
        Ok(Self { queue })
    }

    /// Appends `entry` durably; returns once it is on disk.
    ///
    /// # Errors
    /// The store's error for the whole batch (nothing of it was written).
    pub async fn append(&self, entry: Entry) -> std::result::Result<(), StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let gone = || {
            StoreError::Backend(crate::store::BackendError::Failed(
                "audit appender stopped".into(),
            ))
        };
        self.queue.send((entry, answer)).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// A page of the log: `(index, exact bytes)` in index order, and where the next page
/// starts (`None` after the last entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The entries.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// The `from` of the next page.
    pub next: Option<u64>,
}

/// Default and largest page size of the listing endpoints (CONTRACT.md §7).
pub const DEFAULT_PAGE: usize = 100;

/// Most queued entries one call of [`settle`] numbers (then the integrator goes on).
const SETTLE_MAX: usize = 100 * MAX_PAGE;

/// Numbers queued entries into the log (see `store::audit`): the integrator does it before
/// extending the tree, and the listings before reading, so that an action's entry is
/// listed as soon as the action is acknowledged. Returns how many it numbered.
///
/// # Errors
/// Storage errors.
pub fn settle(store: &Store) -> std::result::Result<u64, StoreError> {
    let mut numbered = store.number_journal()?;
    for _ in 0..SETTLE_MAX / MAX_PAGE {
        let (found, count) = store.audit().number_queued(MAX_PAGE)?;
        numbered += count;
        if found < MAX_PAGE {
            break;
        }
    }
    Ok(numbered)
}

/// Every entry from `from` on, at most `limit` (clamped to 1–1000).
///
/// # Errors
/// Storage errors.
pub fn page(store: &Store, from: u64, limit: usize) -> Result<Page> {
    settle(store)?;
    let limit = limit.clamp(1, MAX_PAGE);
    let entries = store.audit().entries(from, limit)?;
    let appended = store.audit().appended()?;
    let next = entries.last().map(|(i, _)| i + 1).filter(|n| *n < appended);
    Ok(Page { entries, next })
}

/// `subject`'s own entries from index `from` on, at most `limit` (clamped to 1–1000).
///
/// # Errors
/// Storage errors; [`StoreError::Corrupt`] when the index names an entry that is gone.
pub fn subject_page(store: &Store, subject: &str, from: u64, limit: usize) -> Result<Page> {
    settle(store)?;
    let limit = limit.clamp(1, MAX_PAGE);
    let mut indices = store.audit().subject_indices(subject, from, limit + 1)?;
    let next = (indices.len() > limit).then(|| indices[limit]);
    indices.truncate(limit);
    let mut entries = Vec::with_capacity(indices.len());
    for index in indices {
        let bytes = store
            .audit()
            .entry(index)?
            .ok_or_else(|| StoreError::Corrupt {
                tree: crate::store::AUDIT_ENTRIES,
                key: index.to_string(),
                reason: "indexed under its subject but missing".into(),
            })?;
        entries.push((index, bytes));
    }
    Ok(Page { entries, next })
}

/// The newest `count` entries of `subject`, newest first (the activity page).
///
/// # Errors
/// As [`subject_page`].
pub fn latest_of(store: &Store, subject: &str, count: usize) -> Result<Vec<(u64, Vec<u8>)>> {
    // A citizen's entries are few (logins, consents, tokens): reading their indices is cheap.
    let mut all = Vec::new();
    let mut from = 0;
    loop {
        let batch = store.audit().subject_indices(subject, from, MAX_PAGE)?;
        let Some(last) = batch.last().copied() else {
            break;
        };
        all.extend(batch);
        from = last + 1;
    }
    let newest: Vec<u64> = all.into_iter().rev().take(count).collect();
    let mut out = Vec::with_capacity(newest.len());
    for index in newest {
        if let Some(bytes) = store.audit().entry(index)? {
            out.push((index, bytes));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    struct Fixed;
    impl Rng for Fixed {
        fn fill(&self, buf: &mut [u8]) -> Result<()> {
            buf.fill(7);
            Ok(())
        }
    }

    #[test]
    fn an_entry_has_every_contract_field_and_is_appended_with_its_subject() {
        let entry = Entry::new(
            event::TOKENS_ISSUED,
            Actor::Client("app"),
            Some("c-1"),
            serde_json::json!({"scope": "openid"}),
            datetime!(2026-12-03 10:00:00 +01:00),
            &Fixed,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(entry.bytes()).unwrap();
        assert_eq!(v["time"], "2026-12-03T09:00:00Z");
        assert_eq!(v["event"], "tokens.issued");
        assert_eq!(v["actor"], "client:app");
        assert_eq!(v["subject"], "c-1");
        assert_eq!(v["details"]["scope"], "openid");
        assert_eq!(v["salt"], "BwcHBwcHBwcHBwcHBwcHBw");
        let store = Store::in_memory();
        store.transact(|tx| entry.append(tx)).unwrap();
        assert_eq!(settle(&store).unwrap(), 1);
        assert_eq!(store.audit().subject_indices("c-1", 0, 10).unwrap(), [0]);
        let none = Entry::new(
            event::CLIENT_REGISTERED,
            Actor::Admin,
            None,
            Value::Null,
            datetime!(2026-12-03 10:00:00 UTC),
            &Fixed,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(none.bytes()).unwrap();
        assert!(v["subject"].is_null() && v.get("subject").is_some());
        assert_eq!(v["actor"], "admin");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_appender_writes_concurrent_entries_once_each_and_answers_each() {
        let store = Store::in_memory();
        let appender = std::sync::Arc::new(Appender::start(store.clone()).unwrap());
        let waiting: Vec<_> = (0..20)
            .map(|i| {
                let appender = appender.clone();
                tokio::spawn(async move {
                    let e = Entry::new(
                        event::TOKENS_ISSUED,
                        Actor::Client("app"),
                        None,
                        serde_json::json!({"n": i}),
                        datetime!(2026-12-03 10:00:00 UTC),
                        &Fixed,
                    )
                    .unwrap();
                    appender.append(e).await.unwrap()
                })
            })
            .collect();
        for w in waiting {
            w.await.unwrap();
        }
        let s = store.clone();
        let stored = crate::store::offload::run(move || {
            settle(&s).unwrap();
            s.audit().entries(0, 100)
        })
        .await
        .unwrap();
        let mut ns: Vec<u64> = stored
            .iter()
            .map(|(_, b)| {
                serde_json::from_slice::<Value>(b).unwrap()["details"]["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..20).collect::<Vec<u64>>(), "each appended once");
        let indices: Vec<u64> = stored.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, (0..20).collect::<Vec<u64>>(), "in one sequence");
        let s = store.clone();
        let stored = crate::store::offload::run(move || s.audit().appended()).await;
        assert_eq!(stored.unwrap(), 20);
    }

    #[test]
    fn security_md_lists_every_event_type() {
        let doc = include_str!("../../SECURITY.md");
        for e in event::ALL {
            assert!(
                doc.contains(&format!("`{e}`")),
                "SECURITY.md does not list {e}"
            );
        }
    }

    #[test]
    fn pages_say_where_the_next_one_starts() {
        let store = Store::in_memory();
        for i in 0..5 {
            let subject = if i % 2 == 0 { Some("even") } else { None };
            let e = Entry::new(
                event::LOGIN_SUCCEEDED,
                Actor::System,
                subject,
                Value::Null,
                datetime!(2026-12-03 10:00:00 UTC),
                &Fixed,
            )
            .unwrap();
            store.transact(|tx| e.append(tx)).unwrap();
        }
        let first = page(&store, 0, 2).unwrap();
        assert_eq!(first.entries.len(), 2);
        assert_eq!(first.next, Some(2));
        assert_eq!(page(&store, 4, 2).unwrap().next, None);
        assert_eq!(page(&store, 9, 2).unwrap().entries, []);
        let mine = subject_page(&store, "even", 0, 2).unwrap();
        let indices: Vec<u64> = mine.entries.iter().map(|(i, _)| *i).collect();
        assert_eq!((indices, mine.next), (vec![0, 2], Some(4)));
        assert_eq!(subject_page(&store, "even", 4, 2).unwrap().next, None);
        let newest: Vec<u64> = latest_of(&store, "even", 2)
            .unwrap()
            .iter()
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(newest, [4, 2]);
    }
}
