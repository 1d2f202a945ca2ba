// Verifies a detached JAdES-B-B signature (civis's `jades` format) with panva's jose, as an
// outside verifier would: `node jades-verify.mjs SIG.jws DOCUMENT` (driven by tests/it/formats.rs).
// Prints "ok" and exits 0 when the ES256 signature over the empty unencoded payload verifies
// with the key of x5c[0], x5t#S256 is that certificate's SHA-256, and sigD
// (ObjectIdByURIHash, S256) names the SHA-256 of DOCUMENT; otherwise names the failure on
// stderr and exits 1.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, importX509 } from 'jose';

function fail(message) {
  console.error(`jades-verify: ${message}`);
  process.exit(1);
}

const [jwsPath, documentPath] = process.argv.slice(2);
if (!jwsPath || !documentPath) fail('usage: node jades-verify.mjs SIG.jws DOCUMENT');
const jws = readFileSync(jwsPath, 'utf8').trim();
const document = readFileSync(documentPath);

const header = decodeProtectedHeader(jws);
if (!Array.isArray(header.x5c) || header.x5c.length === 0) fail('x5c missing');
const der = Buffer.from(header.x5c[0], 'base64');
const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
const key = await importX509(pem, 'ES256');

let verified;
try {
  // jose handles b64:false itself; sigD is the one critical header it must be told about.
  verified = await compactVerify(jws, key, { algorithms: ['ES256'], crit: { sigD: true } });
} catch (e) {
  fail(`${e.code ?? e.name}: ${e.message}`);
}
const h = verified.protectedHeader;
if (verified.payload.length !== 0) fail('payload is not empty');
if (h.b64 !== false) fail('b64 is not false');
const crit = h.crit ?? [];
if (!crit.includes('sigD') || !crit.includes('b64')) fail(`crit is ${JSON.stringify(crit)}`);
if (!Number.isInteger(h.iat)) fail('iat missing');
if (h['x5t#S256'] !== createHash('sha256').update(der).digest('base64url')) {
  fail('x5t#S256 is not the SHA-256 of x5c[0]');
}
const sigD = h.sigD ?? {};
if (sigD.mId !== 'http://uri.etsi.org/19182/ObjectIdByURIHash') fail(`sigD.mId is ${sigD.mId}`);
if (sigD.hashM !== 'S256') fail(`sigD.hashM is ${sigD.hashM}`);
const digest = createHash('sha256').update(document).digest('base64url');
if (!Array.isArray(sigD.hashV) || !sigD.hashV.includes(digest)) {
  fail(`sigD.hashV ${JSON.stringify(sigD.hashV)} does not name the document's SHA-256 ${digest}`);
}
console.log('ok');
