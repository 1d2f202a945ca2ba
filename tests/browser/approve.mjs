// Signature approval in a real headless Chromium with a virtual WebAuthn authenticator (CDP).
// Driven by tests/it/approval.rs: the official enrols a passkey in the browser, signs in,
// opens the approval page of a request the test made, presses "Sign with passkey" and
// waits for "Signed"; reloading then shows the status without a button.
//
//   node approve.mjs <enrolment_url> <login_url> <approval_url>
//
// Prints one JSON summary line on stdout and exits 0; on failure the step, the status region
// and failed requests on stderr, exit non-zero.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 20_000;
const [enrolUrl, loginUrl, approvalUrl] = process.argv.slice(2);
if (!enrolUrl || !loginUrl || !approvalUrl) {
  console.error('usage: node approve.mjs <enrolment_url> <login_url> <approval_url>');
  process.exit(64);
}

const profile = mkdtempSync(join(tmpdir(), 'civis-approve-profile-'));
const diag = { step: 'launch', failedRequests: [], consoleErrors: [] };
let context = null;
let page = null;
const watchdog = setTimeout(() => fail(new Error(`hard timeout in step ${diag.step}`), 3), 60_000);

async function fail(err, code = 1) {
  const status = page ? await page.locator('#status').textContent().catch(() => null) : null;
  console.error(`approve FAILED at step "${diag.step}": ${err && err.stack ? err.stack : err}`);
  console.error(JSON.stringify({ status, ...diag }, null, 2));
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(code);
}

function check(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

async function waitForStatus(text) {
  const status = page.getByRole('status');
  await status
    .filter({ hasText: text })
    .or(page.locator('[role=status].error'))
    .first()
    .waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  const said = ((await status.textContent()) ?? '').trim();
  check(said.includes(text), `status region says ${JSON.stringify(said)}, expected "${text}"`);
  return said;
}

async function main() {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => diag.consoleErrors.push(`pageerror: ${e.message}`));
  page.on('response', async (r) => {
    if (r.status() >= 400) {
      const body = await r.text().catch(() => '');
      diag.failedRequests.push({ url: r.url(), status: r.status(), body: body.slice(0, 300) });
    }
  });

  diag.step = 'virtual-authenticator';
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  diag.step = 'enrol';
  await page.goto(enrolUrl, { waitUntil: 'load' });
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await waitForStatus('Passkey created');

  diag.step = 'login';
  // No presence while the login page loads, so that its autofill request does not sign in
  // by itself (see e2e.mjs); the click then runs the modal request.
  await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
  await page.goto(loginUrl, { waitUntil: 'load' });
  await page.waitForTimeout(300);
  await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: true });
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await waitForStatus('Signed in as');

  diag.step = 'approval-page';
  const resp = await page.goto(approvalUrl, { waitUntil: 'load' });
  check(resp && resp.status() === 200, `approval page answered ${resp?.status()}`);
  const rows = await page.locator('table.documents tbody tr').allTextContents();

  diag.step = 'approve';
  const before = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  await page.getByRole('button', { name: 'Sign with passkey' }).click();
  const approved = await waitForStatus('Signed');
  const after = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  check(after[0].signCount > before[0].signCount, 'the passkey did not sign the approval');

  diag.step = 'reload';
  await page.reload({ waitUntil: 'load' });
  const buttons = await page.getByRole('button').count();
  const shown = ((await page.locator('#request-status').textContent()) ?? '').trim();

  await context.close();
  context = null;
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
  console.log(JSON.stringify({ ok: true, rows, approved, buttons_after: buttons, shown_after: shown,
    console_errors: diag.consoleErrors }));
}

main().catch((err) => fail(err));
