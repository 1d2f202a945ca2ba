//! Field rules for identity data (CONTRACT.md §2), each returning a normalised value or a
//! plain-language reason.

use time::{Date, OffsetDateTime};

/// Oldest birthdate accepted; anything earlier is a typing error, not a person.
const OLDEST_BIRTHDATE: Date = time::macros::date!(1880 - 01 - 01);

/// Removes all whitespace, upper-cases, then requires 4–32 characters of `A–Z 0–9 -`.
///
/// # Errors
/// The reason the value is refused.
pub fn national_id(raw: &str) -> Result<String, String> {
    let id: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    let len = id.chars().count();
    if !(4..=32).contains(&len) {
        return Err("must be 4 to 32 characters after removing spaces".into());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("may contain only letters A-Z, digits and hyphens".into());
    }
    Ok(id)
}

/// A personal name: 1–100 characters of letters, spaces, apostrophes and hyphens, with at
/// least one letter. Leading and trailing spaces are trimmed.
///
/// # Errors
/// The reason the value is refused.
pub fn name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err("must not be empty".into());
    }
    if len > 100 {
        return Err("must be at most 100 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '\u{2019}' | '-'))
    {
        return Err("may contain only letters, spaces, apostrophes and hyphens".into());
    }
    if !name.chars().any(char::is_alphabetic) {
        return Err("must contain a letter".into());
    }
    Ok(name.to_owned())
}

/// A calendar date `YYYY-MM-DD` that is strictly before today and not before 1880.
///
/// # Errors
/// The reason the value is refused.
pub fn birthdate(raw: &str, now: OffsetDateTime) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(raw, &format)
        .map_err(|_| "must be a real date written YYYY-MM-DD".to_string())?;
    if date >= now.date() {
        return Err("must be in the past".into());
    }
    if date < OLDEST_BIRTHDATE {
        return Err("must not be before 1880-01-01".into());
    }
    Ok(date)
}

/// A practical e-mail check: one `@`, a local part of 1–64 printable characters, a domain
/// of dot-separated labels of letters, digits and hyphens; 254 characters at most. The domain
/// is lower-cased; the local part is kept as given.
///
/// # Errors
/// The reason the value is refused.
pub fn email(raw: &str) -> Result<String, String> {
    let bad = || "must be an e-mail address like name@example.org".to_string();
    let raw = raw.trim();
    if raw.len() > 254 {
        return Err("must be at most 254 characters".into());
    }
    let (local, domain) = raw.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']'
                )
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !local_ok || !domain_ok {
        return Err(bad());
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn national_id_is_normalised() {
        assert_eq!(national_id(" ab 12-34 ").as_deref(), Ok("AB12-34"));
        assert!(national_id("ab1").is_err());
        assert!(national_id("AB_1234").is_err());
        assert!(national_id(&"1".repeat(33)).is_err());
        assert!(national_id("ÄB1234").is_err());
    }

    #[test]
    fn names_accept_unicode_letters_only() {
        assert_eq!(
            name(" Zoë O'Brien-Łukasz ").as_deref(),
            Ok("Zoë O'Brien-Łukasz")
        );
        assert!(name("   ").is_err());
        assert!(name("R2D2").is_err());
        assert!(name("--").is_err());
        assert!(name(&"a".repeat(101)).is_err());
        assert!(name(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn birthdate_must_be_real_and_past() {
        let now = datetime!(2026-11-26 12:00 UTC);
        assert!(birthdate("1990-02-28", now).is_ok());
        assert!(birthdate("1990-02-30", now).is_err());
        assert!(birthdate("2026-11-26", now).is_err());
        assert!(birthdate("2030-01-01", now).is_err());
        assert!(birthdate("26.11.1990", now).is_err());
        assert!(birthdate("1700-01-01", now).is_err());
    }

    #[test]
    fn email_syntax() {
        assert_eq!(
            email("Ana.B@Example.ORG").as_deref(),
            Ok("Ana.B@example.org")
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@x.org",
            "a@@x.org",
            "a b@x.org",
            "a@-x.org",
            "a..b@x.org",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}
