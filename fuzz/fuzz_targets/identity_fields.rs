//! Checks that the identity field validators never panic on any UTF-8 input and that national id, name and e-mail normalisation is idempotent.
#![no_main]

use civis::domain::validate::{birthdate, email, name, national_id};
use libfuzzer_sys::fuzz_target;
use time::{Date, Duration, OffsetDateTime};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    // Normalising an accepted value again must give back the same value.
    if let Ok(v) = national_id(s) {
        assert_eq!(
            national_id(&v),
            Ok(v.clone()),
            "national_id not idempotent for {s:?}"
        );
    }
    if let Ok(v) = name(s) {
        assert_eq!(name(&v), Ok(v.clone()), "name not idempotent for {s:?}");
    }
    if let Ok(v) = email(s) {
        assert_eq!(email(&v), Ok(v.clone()), "email not idempotent for {s:?}");
    }

    // 20 000 days after the epoch: 2024-10-04.
    let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    if let Ok(d) = birthdate(s, now) {
        // The documented contract: strictly before today, not before 1880-01-01, and the
        // accepted date written back as YYYY-MM-DD is accepted as the same date.
        assert!(d < now.date(), "birthdate {d} accepted but not in the past");
        assert!(
            d >= Date::from_ordinal_date(1880, 1).unwrap_or(Date::MIN),
            "birthdate {d} accepted but before 1880"
        );
        let written = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
        assert_eq!(
            birthdate(&written, now),
            Ok(d),
            "birthdate {d} does not round-trip"
        );
    }
});
