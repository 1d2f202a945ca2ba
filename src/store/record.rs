//! Versioned on-disk records: every value is `{"v": <tag>, "data": …}` and is decoded
//! through [`decode`], the single place that checks the tag.
//!
//! A record type is an adjacently tagged enum with one variant per on-disk version, e.g.
//! `enum StoredCitizen { #[serde(rename = "1")] V1(CitizenV1) }`. Adding a version means
//! adding a variant and its upgrade to the domain type; old records stay readable.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Result, StoreError};

/// A type that is stored as a versioned record in one tree.
pub trait Record: Serialize + DeserializeOwned {
    /// The tree the record lives in.
    const TREE: &'static str;
    /// Version tags this build can read (the last one is written).
    const VERSIONS: &'static [&'static str];
}

/// Declares `$name`, a record of one version (`"1"`) wrapping the frozen shape `$shape`, in
/// tree `$tree`. When the shape must change, add a `V2` variant by hand and keep `$shape`.
macro_rules! record_v1 {
    ($name:ident, $tree:expr, $shape:ty) => {
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(tag = "v", content = "data")]
        enum $name {
            #[serde(rename = "1")]
            V1($shape),
        }
        impl $crate::store::record::Record for $name {
            const TREE: &'static str = $tree;
            const VERSIONS: &'static [&'static str] = &["1"];
        }
    };
}
pub(crate) use record_v1;

/// Declares `$name`, a record read in versions `"1"` (`$v1`) and `"2"` (`$v2`), in tree
/// `$tree`, with `into_domain` converting either into the domain entity `$v2` also
/// converts into.
macro_rules! record_v2 {
    ($name:ident, $tree:expr, $v1:ty, $v2:ty) => {
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(tag = "v", content = "data")]
        enum $name {
            #[serde(rename = "1")]
            V1($v1),
            #[serde(rename = "2")]
            V2($v2),
        }
        impl $crate::store::record::Record for $name {
            const TREE: &'static str = $tree;
            const VERSIONS: &'static [&'static str] = &["1", "2"];
        }
        impl $name {
            fn into_domain<T: From<$v1> + From<$v2>>(self) -> T {
                match self {
                    Self::V1(r) => r.into(),
                    Self::V2(r) => r.into(),
                }
            }
        }
    };
}
pub(crate) use record_v2;

/// Encodes a record (its serde tag carries the version).
pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    // Serialising plain data structs with string keys cannot fail; fall back to an empty
    // object rather than panic so that a future non-serialisable field shows up as Corrupt.
    serde_json::to_vec(record).unwrap_or_else(|_| b"{}".to_vec())
}

/// Decodes a record read from `R::TREE` under `key`.
///
/// # Errors
/// [`StoreError::UnknownVersion`] when the tag is not one of `R::VERSIONS`,
/// [`StoreError::Corrupt`] when the bytes are not a record of that version.
pub fn decode<R: Record>(key: &[u8], bytes: &[u8]) -> Result<R> {
    #[derive(serde::Deserialize)]
    struct Tag {
        v: serde_json::Value,
    }
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: R::TREE,
        key: printable_key(key),
        reason,
    };
    let tag: Tag = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    // Tags are strings; any other JSON value is a version this build does not know.
    let (version, known) = match &tag.v {
        serde_json::Value::String(s) => (s.clone(), R::VERSIONS.contains(&s.as_str())),
        other => (other.to_string(), false),
    };
    if !known {
        return Err(StoreError::UnknownVersion {
            tree: R::TREE,
            key: printable_key(key),
            version,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))
}

/// Decodes `bytes` as `R` and, when that succeeds, checks that writing the record back and
/// reading it again gives the same record (compared by its encoding, since records are plain
/// data without `Eq`). `Ok` also when the bytes are not a record: refusing is fine, changing
/// a record on its way through the store is not.
///
/// # Errors
/// What changed, when the record did not survive the round trip.
pub fn round_trip<R: Record>(bytes: &[u8]) -> std::result::Result<(), String> {
    let Ok(first) = decode::<R>(b"round-trip", bytes) else {
        return Ok(());
    };
    let encoded = encode(&first);
    let again = decode::<R>(b"round-trip", &encoded)
        .map_err(|e| format!("{}: its own encoding does not decode: {e}", R::TREE))?;
    let re_encoded = encode(&again);
    if re_encoded == encoded {
        Ok(())
    } else {
        Err(format!(
            "{}: {} became {}",
            R::TREE,
            String::from_utf8_lossy(&encoded),
            String::from_utf8_lossy(&re_encoded)
        ))
    }
}

/// Keys are UTF-8 in practice; anything else is shown as hex.
pub fn printable_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => crate::crypto::digest::hex(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    #[serde(tag = "v", content = "data")]
    enum Probe {
        #[serde(rename = "1")]
        V1 { n: u32 },
    }
    impl Record for Probe {
        const TREE: &'static str = "probe";
        const VERSIONS: &'static [&'static str] = &["1"];
    }

    #[test]
    fn round_trip_carries_version_tag() {
        let bytes = encode(&Probe::V1 { n: 7 });
        assert_eq!(bytes, br#"{"v":"1","data":{"n":7}}"#);
        assert_eq!(decode::<Probe>(b"k", &bytes).ok(), Some(Probe::V1 { n: 7 }));
    }

    #[test]
    fn unknown_version_names_tree_and_key() {
        let err = decode::<Probe>(b"abc", br#"{"v":"99","data":{}}"#).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(text, "record probe/abc has unknown version 99");
    }

    #[test]
    fn a_numeric_tag_is_an_unknown_version() {
        let err = decode::<Probe>(b"k", br#"{"v":1,"data":{"n":1}}"#).err();
        assert!(
            matches!(err, Some(StoreError::UnknownVersion { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_corrupt_not_panic() {
        for bytes in [
            &b"\xff\x00"[..],
            b"{}",
            br#"{"v":"1","data":{"n":"x"}}"#,
            b"",
        ] {
            match decode::<Probe>(b"k", bytes) {
                Err(StoreError::Corrupt { tree: "probe", .. }) => {}
                other => panic!("expected Corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_tree_of_records_has_a_round_trip_and_the_others_are_named() {
        // Trees of raw values (counters, hashes, indexes), not versioned records.
        let raw = [
            "meta",
            crate::store::SIGNATURE_FINGERPRINTS,
            crate::store::AUDIT_QUEUE,
            crate::store::AUDIT_ENTRIES,
            crate::store::AUDIT_SUBJECTS,
            crate::store::AUDIT_HASHES,
            crate::store::AUDIT_CHECKPOINTS,
            crate::store::AUDIT_STATE,
            crate::store::EXPIRY,
        ];
        for tree in crate::store::TREES.iter().map(|t| t.name) {
            let records = crate::store::RECORD_TREES.contains(&tree);
            assert!(
                records != raw.contains(&tree),
                "{tree}: name it in one list"
            );
            assert_eq!(
                crate::store::record_round_trip(tree, b"{}").is_some(),
                records,
                "{tree}"
            );
        }
    }

    #[test]
    fn a_record_that_cannot_be_read_back_is_reported() {
        // Written under one name and read under another: what the store writes, it could
        // not read again. The round trip must say so; input that is no record is fine.
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(tag = "v", content = "data")]
        enum Renamed {
            #[serde(rename = "1")]
            V1 {
                #[serde(rename(serialize = "written", deserialize = "read"))]
                n: u32,
            },
        }
        impl Record for Renamed {
            const TREE: &'static str = "renamed";
            const VERSIONS: &'static [&'static str] = &["1"];
        }
        let failed = round_trip::<Renamed>(br#"{"v":"1","data":{"read":1}}"#);
        assert!(failed.is_err_and(|e| e.contains("does not decode")));
        assert!(round_trip::<Renamed>(b"not a record").is_ok());
        assert!(round_trip::<Probe>(br#"{"v":"1","data":{"n":3}}"#).is_ok());
    }
}
