//! C2SP signed notes with Ed25519 keys (c2sp.org/signed-note, as golang.org/x/mod/sumdb/note
//! writes and reads them) and the transparency-log checkpoint they carry
//! (c2sp.org/tlog-checkpoint): how the audit log publishes its tree heads.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use super::Secret;
use super::digest::sha256;
use super::merkle::Hash;

/// The signature type byte of Ed25519 in key hashes and verifier keys.
const ALG_ED25519: u8 = 0x01;

/// What starts a signature line: em dash, space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Signature lines read at most (the spec asks for at least 16; Go reads 100).
const MAX_SIGNATURES: usize = 100;

/// Why a key, a note or a checkpoint was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// The system random source failed.
    #[error("could not generate an Ed25519 key")]
    KeyGeneration,
    /// The signer's key is not an Ed25519 PKCS#8 document.
    #[error("the signing key is not an Ed25519 PKCS#8 key: {0}")]
    SigningKey(String),
    /// A key name that the spec does not allow.
    #[error(
        "invalid key name {0:?}: it must be non-empty, without spaces, control characters or '+'"
    )]
    Name(String),
    /// Text given to `sign` that could not be read back as a note.
    #[error("note text {0}")]
    Text(&'static str),
    /// A verifier key not of the form `<name>+<8 hex digits>+<base64>`.
    #[error("malformed verifier key: {0}")]
    VerifierKey(&'static str),
    /// A verifier key of a signature type other than Ed25519.
    #[error("verifier key has signature type 0x{0:02x}; only Ed25519 (0x01) is supported")]
    VerifierAlgorithm(u8),
    /// A verifier key whose key hash is not the one of its name and key.
    #[error("verifier key hash {given:08x} does not match its name and key ({computed:08x})")]
    VerifierHash {
        /// The hash written in the key.
        given: u32,
        /// The hash of the name and the key.
        computed: u32,
    },
    /// A note that does not have the signed-note syntax.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A signature line by our key (name and key hash) that does not verify.
    #[error("invalid signature for key {name}+{hash:08x}")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key hash.
        hash: u32,
    },
    /// No signature line by our key.
    #[error("note has no signature by key {name}+{hash:08x}")]
    NotSigned {
        /// The key name.
        name: String,
        /// The key hash.
        hash: u32,
    },
    /// A note text that is not a tlog checkpoint.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
}

/// A new Ed25519 key, PKCS#8 v2 DER (with its public key), for [`NoteSigner::new`].
pub fn generate_key() -> Result<Secret, NoteError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| NoteError::KeyGeneration)?;
    Ok(Secret::new(doc.as_ref().to_vec()))
}

/// The spec's key name rule (Go's `isValidName`: non-empty, no Unicode white space, no '+'),
/// and no control characters, which no note may hold.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// The key hash (key ID): the first four bytes of SHA-256(name || '\n' || type || key).
fn key_hash(name: &str, public_key: &[u8]) -> u32 {
    let mut buf = Vec::with_capacity(name.len() + 2 + public_key.len());
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'\n');
    buf.push(ALG_ED25519);
    buf.extend_from_slice(public_key);
    let h = sha256(&buf);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// Notes must be free of ASCII control characters other than newline.
fn has_control(text: &str) -> bool {
    text.chars().any(|c| c < ' ' && c != '\n')
}

/// Signs notes with one named Ed25519 key.
pub struct NoteSigner {
    name: String,
    hash: u32,
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("hash", &format_args!("{:08x}", self.hash))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl NoteSigner {
    /// A signer named `name` (non-empty, no white space, no '+') with the Ed25519 key in
    /// `pkcs8` (v2 as [`generate_key`] and rcgen write it, whose public key is checked against
    /// the private one; v1 as `openssl genpkey` writes it is accepted too).
    pub fn new(name: &str, pkcs8: &[u8]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Name(name.to_string()));
        }
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| NoteError::SigningKey(e.to_string()))?;
        let hash = key_hash(name, key.public_key().as_ref());
        Ok(Self {
            name: name.to_string(),
            hash,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key: `<name>+<8 hex key hash>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut typed = vec![ALG_ED25519];
        typed.extend_from_slice(self.key.public_key().as_ref());
        format!("{}+{:08x}+{}", self.name, self.hash, STANDARD.encode(typed))
    }

    /// The signed note: `text`, a blank line, and this key's signature line. The text must be
    /// non-empty, end with a newline and hold no control characters but newlines.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Text("must be non-empty and end with a newline"));
        }
        if has_control(text) {
            return Err(NoteError::Text(
                "must not hold control characters other than newline",
            ));
        }
        let mut sig = self.hash.to_be_bytes().to_vec();
        sig.extend_from_slice(self.key.sign(text.as_bytes()).as_ref());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(sig)
        ))
    }
}

/// Verifies notes signed by one Ed25519 key, given by its verifier key.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    name: String,
    hash: u32,
    public_key: [u8; 32],
}

impl NoteVerifier {
    /// Reads a verifier key `<name>+<8 hex digits>+<base64(0x01 || 32-byte key)>`.
    pub fn parse(verifier_key: &str) -> Result<Self, NoteError> {
        // The name has no '+'; the base64 part may.
        let mut parts = verifier_key.splitn(3, '+');
        let (Some(name), Some(hash16), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::VerifierKey(
                "expected <name>+<key hash>+<key>, separated by '+'",
            ));
        };
        if !valid_name(name) {
            return Err(NoteError::Name(name.to_string()));
        }
        // from_str_radix alone would accept a sign.
        if hash16.len() != 8 || !hash16.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NoteError::VerifierKey("key hash is not 8 hex digits"));
        }
        let given = u32::from_str_radix(hash16, 16)
            .map_err(|_| NoteError::VerifierKey("key hash is not 8 hex digits"))?;
        let key = STANDARD
            .decode(key64)
            .map_err(|_| NoteError::VerifierKey("key is not standard base64"))?;
        let Some((&alg, public_key)) = key.split_first() else {
            return Err(NoteError::VerifierKey("key is empty"));
        };
        if alg != ALG_ED25519 {
            return Err(NoteError::VerifierAlgorithm(alg));
        }
        let public_key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| NoteError::VerifierKey("Ed25519 public key is not 32 bytes"))?;
        let computed = key_hash(name, &public_key);
        if given != computed {
            return Err(NoteError::VerifierHash { given, computed });
        }
        Ok(Self {
            name: name.to_string(),
            hash: given,
            public_key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the signed text when a signature line by this key verifies; error otherwise
    /// (unknown signers' lines are ignored, as the spec says; a line with this key's name and
    /// key hash that does not verify refuses the whole note).
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if has_control(note) {
            return Err(NoteError::Malformed("control character other than newline"));
        }
        // The text ends at the last blank line; it keeps its final newline.
        let Some(split) = note.rfind("\n\n") else {
            return Err(NoteError::Malformed("no blank line before the signatures"));
        };
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(NoteError::Malformed(
                "the last signature line does not end with a newline",
            ));
        };
        let verifier = UnparsedPublicKey::new(&ED25519, &self.public_key);
        let mut verified = false;
        for (n, line) in sigs.split('\n').enumerate() {
            if n >= MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signature lines"));
            }
            let Some(line) = line.strip_prefix(SIG_PREFIX) else {
                return Err(NoteError::Malformed(
                    "a signature line does not start with an em dash and a space",
                ));
            };
            let Some((name, b64)) = line.split_once(' ') else {
                return Err(NoteError::Malformed("a signature line has no signature"));
            };
            if !valid_name(name) {
                return Err(NoteError::Malformed(
                    "a signature line has an invalid key name",
                ));
            }
            let sig = STANDARD
                .decode(b64)
                .map_err(|_| NoteError::Malformed("a signature is not standard base64"))?;
            let Some((hash, sig)) = sig.split_first_chunk::<4>() else {
                return Err(NoteError::Malformed("a signature is too short"));
            };
            if sig.is_empty() {
                return Err(NoteError::Malformed("a signature is too short"));
            }
            // Lines of other keys are someone else's business (witnesses, rotation).
            if name != self.name || u32::from_be_bytes(*hash) != self.hash {
                continue;
            }
            if verifier.verify(text.as_bytes(), sig).is_err() {
                return Err(NoteError::BadSignature {
                    name: self.name.clone(),
                    hash: self.hash,
                });
            }
            verified = true;
        }
        if !verified {
            return Err(NoteError::NotSigned {
                name: self.name.clone(),
                hash: self.hash,
            });
        }
        Ok(text)
    }
}

/// A transparency log's signed tree head (c2sp.org/tlog-checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (by convention its key name).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 root of those leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a checkpoint's note text (as [`NoteVerifier::open`] returns it). Strict on the
    /// three mandatory lines; extension lines after them must be non-empty and are ignored.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(NoteError::Checkpoint("text does not end with a newline"));
        };
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Checkpoint(
                "fewer than three lines (origin, size, root hash)",
            ));
        };
        if origin.is_empty() {
            return Err(NoteError::Checkpoint("the origin line is empty"));
        }
        // u64::from_str accepts a leading '+'; the spec wants plain digits, no leading zeros.
        let canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        if !canonical {
            return Err(NoteError::Checkpoint(
                "the size is not a decimal number without leading zeros",
            ));
        }
        let size = size
            .parse::<u64>()
            .map_err(|_| NoteError::Checkpoint("the size does not fit in 64 bits"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Checkpoint(
                "the root hash is not standard base64 of 32 bytes",
            ))?;
        if lines.any(str::is_empty) {
            return Err(NoteError::Checkpoint("an extension line is empty"));
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    /// The Go package's signer key for PeterNeumann (0x01 || Ed25519 seed, base64).
    const PETER_SKEY_SEED: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                              then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    /// A PKCS#8 v1 document (RFC 8410) around a raw Ed25519 seed.
    fn pkcs8_v1(seed: &[u8]) -> Vec<u8> {
        let mut der = ::hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend_from_slice(seed);
        der
    }

    fn signer(name: &str) -> NoteSigner {
        NoteSigner::new(name, generate_key().unwrap().expose()).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.org/civis-audit".into(),
            size: 12345,
            root: sha256(b"root"),
        }
    }

    #[test]
    fn go_vector_verifies_and_signs_byte_for_byte() {
        let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
        assert_eq!(peter.name(), "PeterNeumann");
        let note = format!("{PETER_TEXT}\n{PETER_SIG}");
        assert_eq!(peter.open(&note), Ok(PETER_TEXT));

        // Ed25519 is deterministic: the Go signer key gives the same note.
        let seed = STANDARD.decode(PETER_SKEY_SEED).unwrap();
        assert_eq!(seed[0], ALG_ED25519);
        let s = NoteSigner::new("PeterNeumann", &pkcs8_v1(&seed[1..])).unwrap();
        assert_eq!(s.verifier_key(), PETER_VKEY);
        assert_eq!(s.sign(PETER_TEXT).unwrap(), note);

        // Doubly signed (Go's TestOpen): each key finds its own line, ignores the other.
        let both = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        assert_eq!(peter.open(&both), Ok(PETER_TEXT));
        let enoch = NoteVerifier::parse(ENOCH_VKEY).unwrap();
        assert_eq!(enoch.open(&both), Ok(PETER_TEXT));
        // Repeated lines, as Go accepts them.
        let repeated = format!("{PETER_TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}");
        assert_eq!(peter.open(&repeated), Ok(PETER_TEXT));
    }

    #[test]
    fn c2sp_example_verifies() {
        let v = NoteVerifier::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        assert_eq!(v.open(note), Ok("This is an example message.\n"));
    }

    #[test]
    fn go_note_errors() {
        let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
        let malformed = |n: &str| matches!(peter.open(n), Err(NoteError::Malformed(_)));
        // Go's badMsgs.
        assert!(malformed(PETER_TEXT));
        assert!(malformed(&format!("{PETER_TEXT}\n")));
        assert!(malformed(&format!(
            "{PETER_TEXT}\n{}",
            &PETER_SIG[..PETER_SIG.len() - 1]
        )));
        assert!(malformed(&format!("\x01{PETER_TEXT}\n{PETER_SIG}")));
        assert!(malformed(&format!(
            "{PETER_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        )));
        assert!(malformed(&format!(
            "{PETER_TEXT}\n{PETER_SIG}Unexpected line.\n"
        )));
        assert!(malformed(&format!(
            "{PETER_TEXT}\n{}",
            PETER_SIG.repeat(101)
        )));
        // Go's invalid signature: four characters more inside the base64.
        let bad = format!("{PETER_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert_eq!(
            peter.open(&bad),
            Err(NoteError::BadSignature {
                name: "PeterNeumann".into(),
                hash: 0xc74f20a3
            })
        );
        assert_eq!(
            peter.open(&bad).unwrap_err().to_string(),
            "invalid signature for key PeterNeumann+c74f20a3"
        );
        // Only someone else's signature.
        assert_eq!(
            peter.open(&format!("{PETER_TEXT}\n{ENOCH_SIG}")),
            Err(NoteError::NotSigned {
                name: "PeterNeumann".into(),
                hash: 0xc74f20a3
            })
        );
    }

    #[test]
    fn go_verifier_key_manglings_are_refused() {
        assert!(NoteVerifier::parse(PETER_VKEY).is_ok());
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    let k = &PETER_VKEY[i..j];
                    assert!(NoteVerifier::parse(k).is_err(), "{k:?}");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            let k = String::from_utf8(m).unwrap();
            assert!(NoteVerifier::parse(&k).is_err(), "{k:?}");
        }
        // Go's: wrong length key and unknown algorithm, each with an adjusted key hash. (Go
        // decodes the first and refuses its length; its last base64 digit has non-zero unused
        // bits, which the base64 crate refuses first.)
        assert_eq!(
            NoteVerifier::parse(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            )
            .unwrap_err(),
            NoteError::VerifierKey("key is not standard base64")
        );
        assert_eq!(
            NoteVerifier::parse(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .unwrap_err(),
            NoteError::VerifierAlgorithm(0x65)
        );
    }

    #[test]
    fn verifier_key_errors_are_precise() {
        let err = |k: &str| NoteVerifier::parse(k).unwrap_err().to_string();
        assert_eq!(
            err("PeterNeumann"),
            "malformed verifier key: expected <name>+<key hash>+<key>, separated by '+'"
        );
        assert_eq!(
            err("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            "invalid key name \"\": it must be non-empty, without spaces, control characters or '+'"
        );
        assert_eq!(
            err("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            "invalid key name \"Peter Neumann\": it must be non-empty, without spaces, control characters or '+'"
        );
        assert_eq!(
            err("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            "malformed verifier key: key hash is not 8 hex digits"
        );
        assert_eq!(
            err("PeterNeumann++74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            "malformed verifier key: key hash is not 8 hex digits"
        );
        assert_eq!(
            err("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T"),
            "malformed verifier key: key is not standard base64"
        );
        assert_eq!(
            err("PeterNeumann+c74f20a3+"),
            "malformed verifier key: key is empty"
        );
        for len in [0, 31, 33] {
            let mut key = vec![ALG_ED25519];
            key.resize(1 + len, 7);
            assert_eq!(
                err(&format!("PeterNeumann+c74f20a3+{}", STANDARD.encode(key))),
                "malformed verifier key: Ed25519 public key is not 32 bytes"
            );
        }
        assert_eq!(
            err("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            "verifier key hash c74f20a4 does not match its name and key (c74f20a3)"
        );
        assert_eq!(
            err("PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[..37],
            "verifier key hash c74f20a3 does not m"[..]
        );
        assert_eq!(
            err("PeterNeumann+c74f20a3+AhpcAAAA"),
            "verifier key has signature type 0x02; only Ed25519 (0x01) is supported"
        );
        // Go's ParseUint takes either case; so do we.
        assert!(NoteVerifier::parse(&PETER_VKEY.replace("c74f20a3", "C74F20A3")).is_ok());
    }

    #[test]
    fn round_trip_and_forgeries() {
        let key = generate_key().unwrap();
        let s = NoteSigner::new("example.org/civis-audit", key.expose()).unwrap();
        assert_eq!(s.name(), "example.org/civis-audit");
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(v.name(), "example.org/civis-audit");
        let cp = checkpoint();
        let note = s.sign(&cp.text()).unwrap();
        let text = v.open(&note).unwrap();
        assert_eq!(text, cp.text());
        assert_eq!(Checkpoint::parse(text), Ok(cp.clone()));

        // One text byte changed (signature kept).
        let bad = note.replacen("12345", "12346", 1);
        assert!(matches!(v.open(&bad), Err(NoteError::BadSignature { .. })));
        // The root changed.
        let mut other = cp.clone();
        other.root[0] ^= 1;
        let sig_line = &note[cp.text().len()..];
        let bad = format!("{}{sig_line}", other.text());
        assert!(matches!(v.open(&bad), Err(NoteError::BadSignature { .. })));
        // Same name, another key: its hash differs, so the line is not ours.
        let forger = signer("example.org/civis-audit");
        let forged = forger.sign(&cp.text()).unwrap();
        assert!(matches!(v.open(&forged), Err(NoteError::NotSigned { .. })));
        // Same name, same key hash, another key's signature: a bad signature.
        let forged_sig = forged[cp.text().len() + 1..].split(' ').nth(2).unwrap();
        let mut raw = STANDARD.decode(forged_sig.trim_end()).unwrap();
        raw[..4].copy_from_slice(&v.hash.to_be_bytes());
        let forged = format!(
            "{}\n— example.org/civis-audit {}\n",
            cp.text(),
            STANDARD.encode(raw)
        );
        assert!(matches!(
            v.open(&forged),
            Err(NoteError::BadSignature { .. })
        ));
        // Another name, same key.
        let renamed = NoteSigner::new("example.org/other", key.expose()).unwrap();
        let note2 = renamed.sign(&cp.text()).unwrap();
        assert!(matches!(v.open(&note2), Err(NoteError::NotSigned { .. })));
        let v2 = NoteVerifier::parse(&renamed.verifier_key()).unwrap();
        assert_eq!(v2.open(&note2), Ok(cp.text().as_str()));
        assert!(matches!(v2.open(&note), Err(NoteError::NotSigned { .. })));
        // Our line next to a witness's: still fine.
        let cosigned = format!(
            "{note}{}",
            &forger.sign(&cp.text()).unwrap()[cp.text().len() + 1..]
        );
        assert_eq!(v.open(&cosigned), Ok(cp.text().as_str()));
    }

    #[test]
    fn signer_input_errors() {
        let key = generate_key().unwrap();
        for bad in ["", "a b", "a+b", "a\u{a0}b", "tab\there", "a\x01b"] {
            assert_eq!(
                NoteSigner::new(bad, key.expose()).unwrap_err(),
                NoteError::Name(bad.to_string())
            );
        }
        assert!(matches!(
            NoteSigner::new("x", b"not a key"),
            Err(NoteError::SigningKey(_))
        ));
        let s = NoteSigner::new("x", key.expose()).unwrap();
        assert_eq!(
            s.sign("").unwrap_err().to_string(),
            "note text must be non-empty and end with a newline"
        );
        assert!(matches!(s.sign("no newline"), Err(NoteError::Text(_))));
        assert!(matches!(s.sign("a\rb\n"), Err(NoteError::Text(_))));
        // Empty lines inside the text survive: the last blank line separates.
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        let text = "a\n\nb\n\n";
        assert_eq!(v.open(&s.sign(text).unwrap()), Ok(text));
        // Debug shows no key material.
        let dbg = format!("{s:?}");
        assert!(dbg.contains("<redacted>") && !dbg.contains(&s.verifier_key()[13..]));
    }

    #[test]
    fn checkpoint_parsing_is_strict() {
        let cp = checkpoint();
        let root = STANDARD.encode(cp.root);
        let ok = |t: &str| Checkpoint::parse(t).unwrap();
        assert_eq!(ok(&cp.text()), cp);
        assert_eq!(ok(&format!("o\n0\n{root}\n")).size, 0);
        assert_eq!(
            ok(&format!("o\n18446744073709551615\n{root}\n")).size,
            u64::MAX
        );
        assert_eq!(ok(&format!("o\n1\n{root}\next one\next two\n")).size, 1);
        let err = |t: &str| Checkpoint::parse(t).unwrap_err().to_string();
        assert_eq!(
            err(&format!("o\n1\n{root}")),
            "malformed checkpoint: text does not end with a newline"
        );
        assert_eq!(
            err("o\n1\n"),
            "malformed checkpoint: fewer than three lines (origin, size, root hash)"
        );
        assert_eq!(
            err(&format!("\n1\n{root}\n")),
            "malformed checkpoint: the origin line is empty"
        );
        for size in ["01", "+1", "-1", "", " 1", "1.0", "0x1", "00"] {
            assert_eq!(
                err(&format!("o\n{size}\n{root}\n")),
                "malformed checkpoint: the size is not a decimal number without leading zeros",
                "{size:?}"
            );
        }
        assert_eq!(
            err(&format!("o\n18446744073709551616\n{root}\n")),
            "malformed checkpoint: the size does not fit in 64 bits"
        );
        let short = STANDARD.encode([0u8; 31]);
        let long = STANDARD.encode([0u8; 33]);
        for r in [short.as_str(), long.as_str(), "", &root[..43], "%%%"] {
            assert_eq!(
                err(&format!("o\n1\n{r}\n")),
                "malformed checkpoint: the root hash is not standard base64 of 32 bytes"
            );
        }
        assert_eq!(
            err(&format!("o\n1\n{root}\n\next\n")),
            "malformed checkpoint: an extension line is empty"
        );
    }
}
