//! The service PKI: certificates for officials' and seals' signing keys, issued directly by
//! the service CA from the keys dir, and the CA's CRL (both built with rcgen on ring).
//!
//! Why no issuing CA under the root: the CA made by `civis keys init` is constrained to
//! path length 0, it already lives beside the other online keys, and one level keeps every
//! signature's chain to a single certificate plus the CA verifiers already trust.

use rcgen::{
    CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, RevocationReason,
    RevokedCertParams, SerialNumber, SignatureAlgorithm,
};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::keys::CaKeys;
use super::signer::{EcdsaFileKey, PublicKey};

/// OID of the X.520 `title` attribute.
const TITLE: &[u64] = &[2, 5, 4, 12];
/// OID of the X.520 `givenName` attribute.
const GIVEN_NAME: &[u64] = &[2, 5, 4, 42];
/// OID of the X.520 `surname` attribute.
const SURNAME: &[u64] = &[2, 5, 4, 4];

/// What went wrong in the PKI. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The CA certificate or key in the keys dir cannot issue.
    #[error("service CA unusable: {0}")]
    Ca(String),
    /// rcgen refused to build a certificate or CRL.
    #[error("certificate or CRL generation failed: {0}")]
    Generate(String),
    /// ring could not make a key (random generator).
    #[error("key generation failed: {0}")]
    KeyGen(String),
}

/// Whom a certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A person signing in an office: commonName "given family", givenName, surname,
    /// title and organizationName.
    Official {
        /// Given name(s).
        given_name: String,
        /// Family name(s).
        family_name: String,
        /// Their title (X.520 `title`).
        title: String,
        /// The organisation they sign for.
        organisation: String,
    },
    /// An organisation's e-seal: commonName and organizationName are the organisation.
    Seal {
        /// The organisation.
        organisation: String,
    },
}

/// A certificate just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its serial number (positive, 16 bytes, the first in `0x40..=0x7f`).
    pub serial: Vec<u8>,
    /// Its last valid instant.
    pub not_after: OffsetDateTime,
}

/// One revoked certificate, as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    /// Its serial number.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Replaced by a newer key of the same holder (reason `superseded`), rather than
    /// revoked on its own (no reason code).
    pub superseded: bool,
}

/// The service CA, ready to issue certificates and CRLs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    /// The CA's key identifier, written as every issued certificate's and CRL's AKI.
    key_id: Vec<u8>,
    not_after: OffsetDateTime,
    crl_url: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("crl_url", &self.crl_url)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The CRL's URL under a public base URL.
pub fn crl_url(base_url: &str) -> String {
    format!("{}/pki/crl", base_url.trim_end_matches('/'))
}

impl Ca {
    /// The CA from the keys dir; issued certificates name `<base_url>/pki/crl` as their CRL
    /// distribution point.
    ///
    /// # Errors
    /// [`PkiError::Ca`] when the certificate or key cannot be read or do not belong together.
    pub fn new(keys: &CaKeys, base_url: &str) -> Result<Self, PkiError> {
        let bad = |e: &dyn std::fmt::Display| PkiError::Ca(e.to_string());
        let cert_der = {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject as _;
            CertificateDer::from_pem_slice(keys.cert_pem.as_bytes())
                .map_err(|e| bad(&e))?
                .to_vec()
        };
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der).map_err(|e| bad(&e))?;
        let not_after = x509.validity().not_after.to_datetime();
        let key = KeyPair::try_from(keys.key.expose()).map_err(|e| bad(&e))?;
        if key.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::Ca("ca.key does not belong to ca.pem".into()));
        }
        let key_id = match x509
            .get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
            .map_err(|e| bad(&e))?
            .map(|e| e.parsed_extension())
        {
            Some(x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id)) => {
                id.0.to_vec()
            }
            // What rcgen's issuer falls back to as well: RFC 7093 method 1.
            _ => super::digest::sha256(x509.public_key().raw)[..20].to_vec(),
        };
        let issuer =
            Issuer::from_ca_cert_der(&cert_der.clone().into(), key).map_err(|e| bad(&e))?;
        Ok(Self {
            issuer,
            cert_der,
            key_id,
            not_after,
            crl_url: crl_url(base_url),
        })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Where issued certificates say the CRL is.
    pub fn crl_url(&self) -> &str {
        &self.crl_url
    }

    /// Certifies `key` for `subject`: keyUsage digitalSignature + nonRepudiation (critical),
    /// not a CA, valid from `now` for `validity` (never past the CA's own end), the CRL
    /// distribution point and the CA's key identifier. `random` (16 random bytes) becomes
    /// the serial number: positive, at least 120 random bits.
    ///
    /// # Errors
    /// [`PkiError::Generate`] when rcgen refuses.
    pub fn issue(
        &self,
        subject: &Subject,
        key: &PublicKey,
        random: [u8; 16],
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Issued, PkiError> {
        // Whole seconds: what the certificate can say, so `Issued::not_after` is exact.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let mut params = CertificateParams::default();
        let dn = &mut params.distinguished_name;
        match subject {
            Subject::Official {
                given_name,
                family_name,
                title,
                organisation,
            } => {
                dn.push(DnType::CommonName, format!("{given_name} {family_name}"));
                dn.push(
                    DnType::CustomDnType(GIVEN_NAME.to_vec()),
                    given_name.as_str(),
                );
                dn.push(DnType::CustomDnType(SURNAME.to_vec()), family_name.as_str());
                dn.push(DnType::CustomDnType(TITLE.to_vec()), title.as_str());
                dn.push(DnType::OrganizationName, organisation.as_str());
            }
            Subject::Seal { organisation } => {
                dn.push(DnType::CommonName, organisation.as_str());
                dn.push(DnType::OrganizationName, organisation.as_str());
            }
        }
        let serial = serial_from(random);
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.not_before = now;
        params.not_after = (now + validity).min(self.not_after);
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![self.crl_url.clone()],
        }];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&SubjectKey(key.sec1_point()), &self.issuer)
            .map_err(|e| PkiError::Generate(e.to_string()))?;
        Ok(Issued {
            der: cert.der().to_vec(),
            serial,
            not_after: params.not_after,
        })
    }

    /// A CRL (version 2, DER) listing `revoked`, numbered `number`, valid from `this_update`
    /// to `next_update`.
    ///
    /// # Errors
    /// [`PkiError::Generate`] when rcgen refuses (e.g. `next_update` not after
    /// `this_update`).
    pub fn crl(
        &self,
        revoked: &[RevokedCert],
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.revoked_at,
                    reason_code: r.superseded.then_some(RevocationReason::Superseded),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::PreSpecified(self.key_id.clone()),
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(|e| PkiError::Generate(e.to_string()))?;
        Ok(crl.der().to_vec())
    }
}

/// A positive 16-byte serial from 16 random bytes: the top bit cleared (positive) and the
/// next one set, so that DER keeps all 16 bytes and the stored serial is the certificate's.
fn serial_from(mut random: [u8; 16]) -> Vec<u8> {
    random[0] = (random[0] & 0x7f) | 0x40;
    random.to_vec()
}

/// A subject's public key as rcgen wants it: the P-256 point.
struct SubjectKey<'a>(&'a [u8]);

impl PublicKeyData for SubjectKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// A fresh P-256 signing key (ring): its PKCS#8 (to be wrapped at once, never stored in
/// clear) and the key itself, behind the [`super::Signer`] seam.
///
/// # Errors
/// [`PkiError::KeyGen`] when the random generator fails.
pub fn new_signing_key() -> Result<(Zeroizing<Vec<u8>>, EcdsaFileKey), PkiError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| PkiError::KeyGen("random generator failed".into()))?;
    let pkcs8 = Zeroizing::new(doc.as_ref().to_vec());
    let key = EcdsaFileKey::from_pkcs8(&pkcs8).map_err(PkiError::KeyGen)?;
    Ok((pkcs8, key))
}

/// A DER certificate as PEM (RFC 7468: base64 in lines of 64 characters).
pub fn cert_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Signer as _;
    use x509_parser::der_parser::oid::Oid;
    use x509_parser::prelude::*;

    fn dev_ca() -> Ca {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev");
        let keys = crate::crypto::KeySet::load(&dir, &dir.join("admin-token")).unwrap();
        Ca::new(&keys.ca, "https://id.example.gov/").unwrap()
    }

    fn now() -> OffsetDateTime {
        ::time::macros::datetime!(2027-01-01 0:00 UTC)
    }

    fn official() -> Subject {
        Subject::Official {
            given_name: "Ana".into(),
            family_name: "Novak".into(),
            title: "Head of Permits".into(),
            organisation: "City of Ljubljana".into(),
        }
    }

    fn attr<'a>(name: &'a X509Name<'_>, oid: &[u64]) -> Vec<&'a str> {
        let oid = Oid::from(oid).unwrap();
        name.iter_attributes()
            .filter(|a| a.attr_type() == &oid)
            .filter_map(|a| a.as_str().ok())
            .collect()
    }

    #[test]
    fn an_official_certificate_has_the_profile() {
        let ca = dev_ca();
        let (_, key) = new_signing_key().unwrap();
        let issued = ca
            .issue(
                &official(),
                key.public_key(),
                [0xff; 16],
                now(),
                Duration::days(730),
            )
            .unwrap();
        let (rest, cert) = parse_x509_certificate(&issued.der).unwrap();
        assert!(rest.is_empty());
        let subject = cert.subject();
        assert_eq!(attr(subject, &[2, 5, 4, 3]), ["Ana Novak"]);
        assert_eq!(attr(subject, GIVEN_NAME), ["Ana"]);
        assert_eq!(attr(subject, SURNAME), ["Novak"]);
        assert_eq!(attr(subject, TITLE), ["Head of Permits"]);
        assert_eq!(attr(subject, &[2, 5, 4, 10]), ["City of Ljubljana"]);

        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(ku.value.digital_signature() && ku.value.non_repudiation());
        assert!(!ku.value.key_cert_sign() && !ku.value.crl_sign());
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(!bc.value.ca);

        assert_eq!(cert.raw_serial(), issued.serial.as_slice());
        assert_eq!(issued.serial.len(), 16);
        assert_eq!(issued.serial[0], 0x7f, "top bit cleared: positive");
        assert_eq!(cert.validity().not_before.to_datetime(), now());
        assert_eq!(
            cert.validity().not_after.to_datetime(),
            now() + Duration::days(730)
        );
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            key.public_key().sec1_point()
        );

        let mut crl_dp = Vec::new();
        let mut aki = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    for p in points.iter() {
                        if let Some(DistributionPointName::FullName(names)) = &p.distribution_point
                        {
                            for n in names {
                                if let GeneralName::URI(u) = n {
                                    crl_dp.push(u.to_string());
                                }
                            }
                        }
                    }
                }
                ParsedExtension::AuthorityKeyIdentifier(a) => aki = a.key_identifier.clone(),
                _ => {}
            }
        }
        assert_eq!(crl_dp, ["https://id.example.gov/pki/crl"]);
        assert_eq!(aki.unwrap().0, ca.key_id.as_slice(), "AKI is the CA's SKI");

        let (_, ca_cert) = parse_x509_certificate(ca.cert_der()).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    }

    #[test]
    fn a_seal_names_the_organisation_and_validity_stops_at_the_ca() {
        let ca = dev_ca();
        let (_, key) = new_signing_key().unwrap();
        let seal = Subject::Seal {
            organisation: "Tax Office".into(),
        };
        let issued = ca
            .issue(
                &seal,
                key.public_key(),
                [0; 16],
                now(),
                Duration::days(365 * 50),
            )
            .unwrap();
        let (_, cert) = parse_x509_certificate(&issued.der).unwrap();
        assert_eq!(attr(cert.subject(), &[2, 5, 4, 3]), ["Tax Office"]);
        assert_eq!(attr(cert.subject(), &[2, 5, 4, 10]), ["Tax Office"]);
        assert!(attr(cert.subject(), TITLE).is_empty());
        assert_eq!(issued.serial[0], 0x40, "second bit set: 16 bytes kept");
        assert_eq!(cert.raw_serial(), issued.serial.as_slice());
        assert_eq!(issued.not_after, ca.not_after, "never outlives the CA");
    }

    #[test]
    fn the_crl_lists_revocations_and_verifies_against_the_ca() {
        let ca = dev_ca();
        let revoked = [
            RevokedCert {
                serial: serial_from([1; 16]),
                revoked_at: now(),
                superseded: false,
            },
            RevokedCert {
                serial: serial_from([2; 16]),
                revoked_at: now() + Duration::hours(1),
                superseded: true,
            },
        ];
        let der = ca
            .crl(&revoked, 42, now(), now() + Duration::days(1))
            .unwrap();
        let (rest, crl) = parse_x509_crl(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(crl.crl_number().map(|n| n.to_u64_digits()), Some(vec![42]));
        let listed: Vec<_> = crl
            .iter_revoked_certificates()
            .map(|r| (r.raw_serial().to_vec(), r.revocation_date.to_datetime()))
            .collect();
        assert_eq!(
            listed,
            revoked
                .iter()
                .map(|r| (r.serial.clone(), r.revoked_at))
                .collect::<Vec<_>>()
        );
        let (_, ca_cert) = parse_x509_certificate(ca.cert_der()).unwrap();
        assert_eq!(crl.issuer(), ca_cert.subject());
        crl.verify_signature(ca_cert.public_key()).unwrap();
        assert!(ca.crl(&[], 1, now(), now()).is_err(), "next after this");
    }

    #[test]
    fn a_ca_key_of_another_certificate_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev");
        let keys = crate::crypto::KeySet::load(&dir, &dir.join("admin-token")).unwrap();
        let wrong = CaKeys {
            cert_pem: keys.ca.cert_pem.clone(),
            key: keys.tls.key.clone(),
        };
        let err = Ca::new(&wrong, "https://x").unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");
        assert!(!format!("{:?}", dev_ca()).contains("PRIVATE"));
    }
}
