// End-to-end passkey enrolment and login in a real headless Chromium with a virtual WebAuthn
// authenticator (CDP). Driven by tests/it/browser.rs; see README.md beside this file.
//
//   node e2e.mjs <enrolment_url> <login_url> [<relying party JSON>]
//
// With the third argument ({issuer, client_id, client_secret, redirect_uri,
// post_logout_redirect_uri}), the signed-in browser then goes through an OpenID Connect code
// flow driven by panva's openid-client (oidc-rp.mjs).
//
// Prints one JSON summary line on stdout and exits 0 on success. On failure it prints what the
// page's status region said, the ceremony requests that failed, the browser console errors and
// the path of a screenshot (in $TMPDIR) on stderr, and exits non-zero.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { fapiRelyingParty } from './fapi-rp.mjs';
import { relyingParty } from './oidc-rp.mjs';

const HARD_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 20_000;

const [enrolUrl, loginUrl, rpJson] = process.argv.slice(2);
if (!enrolUrl || !loginUrl) {
  console.error('usage: node e2e.mjs <enrolment_url> <login_url>');
  process.exit(64);
}

const started = Date.now();
const profile = mkdtempSync(join(tmpdir(), 'civis-e2e-profile-'));
const diag = { step: 'launch', consoleErrors: [], failedRequests: [] };
let context = null;
let page = null;

// Whatever hangs, the script ends within HARD_TIMEOUT_MS.
const watchdog = setTimeout(() => {
  fail(new Error(`hard timeout: ${HARD_TIMEOUT_MS / 1000} s elapsed during step "${diag.step}"`), 3);
}, HARD_TIMEOUT_MS);

let failing = false;
async function fail(err, code = 1) {
  if (failing) return;
  failing = true;
  const report = { ok: false, step: diag.step, error: String(err && err.stack ? err.stack : err) };
  if (page) {
    report.url = page.url();
    report.status = await withTimeout(page.locator('#status').textContent(), 3000).catch(
      (e) => `<unreadable: ${e.message}>`,
    );
    const shot = join(tmpdir(), `civis-e2e-${Date.now()}-${diag.step}.png`);
    report.screenshot = await withTimeout(page.screenshot({ path: shot, fullPage: true }), 5000)
      .then(() => shot)
      .catch((e) => `<no screenshot: ${e.message}>`);
  }
  report.failedRequests = diag.failedRequests;
  report.consoleErrors = diag.consoleErrors;
  console.error(`e2e FAILED at step "${diag.step}": ${report.error}`);
  console.error(`status region: ${JSON.stringify(report.status ?? null)}`);
  console.error(`screenshot: ${report.screenshot ?? '<none>'}`);
  console.error(JSON.stringify(report, null, 2));
  await withTimeout(context ? context.close() : Promise.resolve(), 5000).catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(code);
}

function withTimeout(promise, ms) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

function check(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

// Waits until the status region shows `text`, failing at once if the page reports an error.
async function waitForStatus(text) {
  const status = page.getByRole('status');
  const ok = status.filter({ hasText: text });
  const error = page.locator('[role=status].error');
  await ok.or(error).first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  const said = (await status.textContent()) ?? '';
  check(said.includes(text), `status region says ${JSON.stringify(said)}, expected "${text}"`);
  return said.trim();
}

async function main() {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') diag.consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => diag.consoleErrors.push(`pageerror: ${e.message}`));
  page.on('response', async (r) => {
    if (r.status() >= 400) {
      const body = await r.text().catch(() => '');
      diag.failedRequests.push({ url: r.url(), status: r.status(), body: body.slice(0, 500) });
    }
  });

  // Ceremony ids the login page started and finished, to tell which request signed in.
  const loginStarted = [];
  const loginFinished = [];
  page.on('response', async (r) => {
    const path = new URL(r.url()).pathname;
    if (path === '/login/start' && r.ok()) {
      loginStarted.push((await r.json().catch(() => ({}))).ceremony);
    } else if (path === '/login/finish') {
      loginFinished.push(r.request().postDataJSON()?.ceremony);
    }
  });

  diag.step = 'virtual-authenticator';
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  diag.step = 'enrol-page';
  const enrolResp = await page.goto(enrolUrl, { waitUntil: 'load' });
  check(enrolResp && enrolResp.status() === 200, `enrolment page answered ${enrolResp?.status()}`);

  diag.step = 'enrol';
  await page.getByRole('button', { name: 'Create passkey' }).click();
  const enrolStatus = await waitForStatus('Passkey created');

  diag.step = 'enrol-credentials';
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  const resident = credentials.filter((c) => c.isResidentCredential);
  check(credentials.length === 1, `authenticator holds ${credentials.length} credentials, expected 1`);
  check(resident.length === 1, `authenticator holds ${resident.length} resident credentials, expected 1`);
  const enrolled = resident[0];

  diag.step = 'login-page';
  // The login page starts a conditional-mediation request (passkey autofill) on load. Chromium's
  // virtual authenticator would answer it at once, as if the person had picked the passkey from
  // autofill, and the page would sign in before anyone clicks. So the authenticator simulates no
  // presence while the page loads (the person has not acted yet), and presence comes back just
  // before the click, which aborts the pending request and runs the modal one.
  await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
  const conditionalStart = page
    .waitForResponse((r) => new URL(r.url()).pathname === '/login/start', { timeout: 5000 })
    .catch(() => null);
  const loginResp = await page.goto(loginUrl, { waitUntil: 'load' });
  check(loginResp && loginResp.status() === 200, `login page answered ${loginResp?.status()}`);

  diag.step = 'csp';
  const csp = loginResp.headers()['content-security-policy'] ?? '';
  check(csp.includes("script-src 'self'"), `login page CSP lacks "script-src 'self'": ${JSON.stringify(csp)}`);
  check(!csp.includes("'unsafe-inline'"), `login page CSP allows inline code: ${JSON.stringify(csp)}`);
  // And the browser enforces it: an inline <script> added to the page must not run.
  const inlineRan = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const s = document.createElement('script');
        s.textContent = 'window.__civisInlineRan = true;';
        document.head.appendChild(s);
        setTimeout(() => resolve(window.__civisInlineRan === true), 50);
      }),
  );
  check(!inlineRan, 'an inline <script> ran despite the Content-Security-Policy');
  // Not a page failure: this console error is the CSP doing its job.
  diag.consoleErrors = diag.consoleErrors.filter((m) => !m.includes('Content Security Policy'));

  diag.step = 'login';
  // Where the browser offers autofill, the page has now asked for a challenge for it.
  const conditionalResp = await conditionalStart;
  const conditionalCeremony = conditionalResp
    ? (await conditionalResp.json().catch(() => ({}))).ceremony
    : null;
  if (conditionalResp) await page.waitForTimeout(300); // let navigator.credentials.get() be pending
  const statusBeforeClick = ((await page.locator('#status').textContent()) ?? '').trim();
  check(
    !statusBeforeClick.includes('Signed in'),
    `the page signed in before the click: ${JSON.stringify(statusBeforeClick)}`,
  );
  await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: true });
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  const loginStatus = await waitForStatus('Signed in as');
  // The click's own (modal) request signed in, once, and not the aborted autofill request.
  check(loginFinished.length === 1, `${loginFinished.length} /login/finish requests, expected 1`);
  check(
    loginFinished[0] !== conditionalCeremony && loginStarted.includes(loginFinished[0]),
    `signed in with ceremony ${loginFinished[0]}, not the click's (autofill: ${conditionalCeremony})`,
  );

  diag.step = 'login-credentials';
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  check(after.credentials.length === 1, `authenticator holds ${after.credentials.length} credentials after login`);
  check(
    after.credentials[0].signCount > enrolled.signCount,
    `sign count did not advance (${enrolled.signCount} -> ${after.credentials[0].signCount})`,
  );

  diag.step = 'session';
  // The sign-in left a session cookie that the browser sends back (localhost is a secure
  // context, so Chromium keeps the __Host- Secure cookie even over plain HTTP).
  const session = await page.evaluate(async () => {
    const r = await fetch('/session', { credentials: 'same-origin' });
    return { status: r.status, body: r.ok ? await r.json() : null };
  });
  const credentialId = Buffer.from(enrolled.credentialId, 'base64').toString('base64url');
  check(session.status === 200, `GET /session answered ${session.status} after signing in`);
  check(
    session.body.passkey_id === credentialId && session.body.user_verified === true,
    `session does not match the passkey: ${JSON.stringify(session.body)}`,
  );

  // The FAPI 2.0 app first: the other one ends with logging the citizen out.
  const rpCfg = rpJson ? JSON.parse(rpJson) : null;
  const fapiResult = rpCfg?.fapi
    ? await fapiRelyingParty(page, rpCfg.issuer, rpCfg.fapi, diag)
    : null;
  const oidcResult = rpCfg ? await relyingParty(page, rpCfg, diag) : null;

  diag.step = 'close';
  const browserVersion = await cdp
    .send('Browser.getVersion')
    .then((v) => v.product)
    .catch(() => null);
  await context.close();
  context = null;
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
  console.log(
    JSON.stringify({
      ok: true,
      browser: browserVersion,
      elapsed_ms: Date.now() - started,
      enrol: {
        status: enrolStatus,
        credential_id: credentialId, // base64url, as the server shows it (CDP gives base64)
        rp_id: enrolled.rpId,
      },
      login: {
        status: loginStatus,
        sign_count: after.credentials[0].signCount,
        ceremonies_started: loginStarted.length,
      },
      autofill_request_started: conditionalResp !== null,
      status_before_click: statusBeforeClick,
      csp,
      session: session.body,
      oidc: oidcResult,
      fapi: fapiResult,
      console_errors: diag.consoleErrors,
    }),
  );
}

main().catch((err) => fail(err));
