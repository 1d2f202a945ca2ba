"""Validate a detached CAdES signature (DER CMS SignedData) over a document with pyHanko.

Usage: pyhanko_verify.py SIGNATURE DOCUMENT CA.pem [CRL.der]

Trusts only CA.pem and fetches nothing. Without CRL.der revocation is soft-fail (the CRL the
certificate names is not fetched, so it is not checked); with it, hard-fail against that CRL. Prints one JSON object on stdout and exits 0
when the signature is intact, valid and trusted, 1 when it is not, 2 on wrong usage.

pyHanko matches the signing-certificate-v2 attribute (RFC 5035) against the signer's
certificate while selecting it (ETSI EN 319 102-1 §5.2.3.4) and refuses a signature whose
ESSCertIDv2 does not name it, with the AdES sub-indication NO_SIGNING_CERTIFICATE_FOUND;
`openssl cms -verify` does not look at that attribute.
"""

import asyncio
import json
import sys

from asn1crypto import cms, pem, x509
from pyhanko.sign.general import check_ess_certid
from pyhanko.sign.validation import async_validate_detached_cms
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import get_signing_cert_attr
from pyhanko_certvalidator import ValidationContext


def load_ca(path):
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def signer_of(signed_data):
    """The certificate the SignerInfo's issuerAndSerialNumber names, if carried."""
    sid = signed_data["signer_infos"][0]["sid"].chosen
    for choice in signed_data["certificates"] or []:
        cert = choice.chosen
        if (
            isinstance(cert, x509.Certificate)
            and cert.issuer == sid["issuer"]
            and cert.serial_number == sid["serial_number"].native
        ):
            return cert
    return None


def ess_status(signed_data):
    """'match', 'mismatch' or 'absent': signing-certificate-v2 against the signer's cert."""
    attr = get_signing_cert_attr(signed_data["signer_infos"][0]["signed_attrs"])
    if attr is None:
        return "absent"
    cert = signer_of(signed_data)
    if cert is None:
        return "no signer certificate"
    return "match" if check_ess_certid(cert, attr["certs"][0]) else "mismatch"


async def validate(sig_path, doc_path, ca_path, crl_path=None):
    with open(sig_path, "rb") as f:
        content_info = cms.ContentInfo.load(f.read())
    signed_data = content_info["content"]
    with open(doc_path, "rb") as f:
        document = f.read()
    if crl_path is None:
        context = ValidationContext(trust_roots=[load_ca(ca_path)], allow_fetching=False)
    else:
        with open(crl_path, "rb") as f:
            crls = [f.read()]
        context = ValidationContext(
            trust_roots=[load_ca(ca_path)],
            crls=crls,
            allow_fetching=False,
            revocation_mode="hard-fail",
        )
    result = {"signing_certificate_v2": ess_status(signed_data)}
    try:
        status = await async_validate_detached_cms(
            document, signed_data, signer_validation_context=context
        )
    except SignatureValidationError as e:
        # Refused before the cryptographic checks: intact, valid and trusted are unknown.
        result.update(
            intact=None,
            valid=None,
            trusted=None,
            bottom_line=False,
            error=e.failure_message,
            ades_status=e.ades_status.name if e.ades_status else None,
            ades_subindication=e.ades_subindication.name,
        )
        return result
    result.update(
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        revoked=status.revoked,
        bottom_line=status.bottom_line,
        summary=status.summary(),
        signer=status.signing_cert.subject.human_friendly,
        signing_time=(
            status.signer_reported_dt.isoformat() if status.signer_reported_dt else None
        ),
        trust_problem=(
            str(status.trust_problem_indic) if status.trust_problem_indic else None
        ),
    )
    return result


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    result = asyncio.run(validate(*sys.argv[1:]))
    print(json.dumps(result, indent=2))
    ok = result["bottom_line"] and result["signing_certificate_v2"] == "match"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
