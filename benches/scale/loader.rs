//! The loader: N citizens, each with one passkey and the two audit entries their
//! registration and enrolment write, put straight into a sled data directory through the
//! store's own API (1000 citizens per transaction), then integrated into the Merkle tree.
//!
//! Every passkey is a copy of one real enrolment (the integration tests' software device,
//! through the server) with its own credential id and owner, so the login series can sign
//! assertions for any of them with that enrolment's key.

use std::path::Path;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use civis::domain::audit::{Actor, Entry, event};
use civis::domain::citizens::Citizen;
use civis::domain::passkeys::StoredPasskey;
use civis::store::{Store, StoreError};
use serde_json::json;
use webauthn_rs::prelude::{Credential, Passkey};

/// Citizens per loader transaction.
const BATCH: u64 = 1000;

/// The id of the `i`th loaded citizen: UUID form, as the registry makes them, and the
/// WebAuthn user handle of its passkey.
pub fn citizen_uuid(i: u64) -> uuid::Uuid {
    let d = ring::digest::digest(&ring::digest::SHA256, format!("citizen {i}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    // Version 4, RFC 4122 variant.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b)
}

/// The credential id of the `i`th citizen's passkey (16 random-looking bytes).
pub fn credential_id(i: u64) -> Vec<u8> {
    let d = ring::digest::digest(&ring::digest::SHA256, format!("credential {i}").as_bytes());
    d.as_ref()[..16].to_vec()
}

/// The national id of the `i`th citizen (normalised form).
pub fn national_id(i: u64) -> String {
    format!("NID{i:012}")
}

/// What one load did.
pub struct Loaded {
    pub citizens: u64,
    pub entries: u64,
    pub load_seconds: f64,
    pub integrate_seconds: f64,
}

/// Adds `n` citizens to `store` (no server may have it open), each with a copy of
/// `template`, then integrates every entry with the log's key from `keys`.
pub fn load(
    store: &Store,
    template: &StoredPasskey,
    keys: &civis::crypto::KeySet,
    n: u64,
) -> Loaded {
    let rng = civis::domain::SystemRng::new();
    let credential: Credential = template.passkey.clone().into();
    let start = Instant::now();
    let mut entries = 0;
    let mut next = 0;
    while next < n {
        let end = (next + BATCH).min(n);
        // Each batch at its own time, as a real deployment's entries are: the queue is in
        // time order, and numbering scans from near the last time it numbered.
        let now = time::OffsetDateTime::now_utc();
        let rows: Vec<(Citizen, StoredPasskey, [Entry; 2])> = (next..end)
            .map(|i| {
                let id = citizen_uuid(i).to_string();
                let mut cred = credential.clone();
                let raw_id = credential_id(i);
                let passkey_id = URL_SAFE_NO_PAD.encode(&raw_id);
                cred.cred_id = raw_id;
                cred.counter = 0;
                let passkey = StoredPasskey {
                    id: passkey_id,
                    citizen_id: id.clone(),
                    passkey: Passkey::from(cred),
                    created_at: now,
                    last_used_at: None,
                    revoked_at: None,
                };
                let citizen = Citizen {
                    id: id.clone(),
                    given_name: "Ana".into(),
                    family_name: "Novak".into(),
                    birthdate: time::macros::date!(1990 - 04 - 01),
                    national_id: national_id(i),
                    email: None,
                    created_at: now,
                    registered_by: "bench-loader".into(),
                    passkey_ids: vec![passkey.id.clone()],
                    enrolment_hash: None,
                };
                let entry = |event, actor, details| {
                    Entry::new(event, actor, Some(&id), details, now, &rng).expect("entry")
                };
                let entries = [
                    entry(
                        event::CITIZEN_REGISTERED,
                        Actor::Admin,
                        json!({"registered_by": "bench-loader"}),
                    ),
                    entry(
                        event::PASSKEY_ADDED,
                        Actor::Citizen(&id),
                        json!({"passkey_id": passkey.id}),
                    ),
                ];
                (citizen, passkey, entries)
            })
            .collect();
        store
            .transact(|tx| {
                for (citizen, passkey, entries) in &rows {
                    tx.citizens().insert_enrolled(citizen)?;
                    tx.passkeys().insert_credential(passkey)?;
                    for e in entries {
                        e.append(tx)?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .expect("load a batch");
        entries += 2 * (end - next);
        next = end;
    }
    let load_seconds = start.elapsed().as_secs_f64();

    // The log's name was fixed by the server's first checkpoint; sign with its key.
    let name = store
        .audit()
        .verifier()
        .expect("read the verifier")
        .and_then(|v| {
            civis::crypto::note::NoteVerifier::parse(&v)
                .ok()
                .map(|v| v.name().to_owned())
        })
        .expect("a server started on this data dir first");
    let key = keys.audit.as_ref().expect("keys-dev/audit.key");
    let signer = civis::crypto::note::NoteSigner::new(&name, key.expose()).expect("note signer");
    let start = Instant::now();
    while civis::domain::transparency::integrate(store, &signer)
        .expect("integrate")
        .is_some()
    {}
    let integrate_seconds = start.elapsed().as_secs_f64();
    store.flush().expect("flush");
    Loaded {
        citizens: n,
        entries,
        load_seconds,
        integrate_seconds,
    }
}

/// Bytes under `dir`, recursively.
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
