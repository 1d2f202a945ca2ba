//! `civis keys init`: a complete, fresh key set.

use std::fs;
use std::path::Path;

use super::files::write_new;
use super::{
    ADMIN_TOKEN, AUDIT_KEY, CA_CERT, CA_KEY, DEV_MARKER, HMAC_KEY, KEK_KEY, KeyError, TLS_CERT,
    TLS_KEY, TOKEN_KEY,
};

/// Options for generating a key set.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// DNS names and IP addresses the TLS certificate covers.
    pub hosts: Vec<String>,
    /// Organisation named in the CA certificate.
    pub organisation: String,
    /// Mark the set as public development keys.
    pub development: bool,
}

/// Generates a complete key set into `dir`, refusing to overwrite anything. Private keys
/// and the admin token are written with mode 0600.
///
/// # Errors
/// [`KeyError::Exists`] naming the first file already present; I/O or generation errors.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<(), KeyError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
    };
    let mut files = vec![
        CA_CERT,
        CA_KEY,
        TLS_CERT,
        TLS_KEY,
        TOKEN_KEY,
        ADMIN_TOKEN,
        HMAC_KEY,
        KEK_KEY,
        AUDIT_KEY,
    ];
    if opts.development {
        files.push(DEV_MARKER);
    }
    for f in &files {
        let p = dir.join(f);
        if p.exists() {
            return Err(KeyError::Exists { path: p });
        }
    }
    fs::create_dir_all(dir).map_err(|source| KeyError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let gen_err = |e: rcgen::Error| KeyError::Generate(e.to_string());
    let now = time::OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("{} civis CA", opts.organisation),
    );
    ca.distinguished_name
        .push(DnType::OrganizationName, opts.organisation.clone());
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key).map_err(gen_err)?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let tls_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut tls = CertificateParams::new(opts.hosts.clone()).map_err(gen_err)?;
    tls.distinguished_name.push(
        DnType::CommonName,
        opts.hosts
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".into()),
    );
    tls.is_ca = IsCa::ExplicitNoCa;
    tls.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    tls.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    tls.not_before = now - time::Duration::days(1);
    tls.not_after = now + time::Duration::days(825);
    let tls_cert = tls.signed_by(&tls_key, &issuer).map_err(gen_err)?;

    let token_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let admin_token = random_line()?;
    let hmac_key = random_line()?;
    let kek_key = random_line()?;
    let audit_key = KeyPair::generate_for(&PKCS_ED25519).map_err(gen_err)?;

    write_new(&dir.join(CA_CERT), ca_pem.as_bytes(), 0o644)?;
    write_new(
        &dir.join(CA_KEY),
        zeroize::Zeroizing::new(ca_key_pem).as_bytes(),
        0o600,
    )?;
    write_new(
        &dir.join(TLS_CERT),
        format!("{}{}", tls_cert.pem(), ca_pem).as_bytes(),
        0o644,
    )?;
    write_new(
        &dir.join(TLS_KEY),
        zeroize::Zeroizing::new(tls_key.serialize_pem()).as_bytes(),
        0o600,
    )?;
    write_new(
        &dir.join(TOKEN_KEY),
        zeroize::Zeroizing::new(token_key.serialize_pem()).as_bytes(),
        0o600,
    )?;
    write_new(&dir.join(ADMIN_TOKEN), admin_token.as_bytes(), 0o600)?;
    write_new(&dir.join(HMAC_KEY), hmac_key.as_bytes(), 0o600)?;
    write_new(&dir.join(KEK_KEY), kek_key.as_bytes(), 0o600)?;
    write_new(
        &dir.join(AUDIT_KEY),
        zeroize::Zeroizing::new(audit_key.serialize_pem()).as_bytes(),
        0o600,
    )?;
    if opts.development {
        write_new(
            &dir.join(DEV_MARKER),
            b"These keys are public. Never use them outside development.\n",
            0o644,
        )?;
    }
    Ok(())
}

/// 32 random bytes as a base64url line.
fn random_line() -> Result<zeroize::Zeroizing<String>, KeyError> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| KeyError::Generate("random generator failed".into()))?;
    Ok(zeroize::Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw) + "\n",
    ))
}
