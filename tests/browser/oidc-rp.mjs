// An agency app as a stock relying party: panva's openid-client (certified OIDC library)
// against civis with nothing but the issuer URL, a client id and its secret. The browser that
// just signed in with its passkey (e2e.mjs) is the citizen's; this module plays the app:
// discovery → authorization request with PKCE S256, state and nonce → consent (**Allow**) →
// code exchange with ID token validation against the JWKS → userinfo → refresh →
// introspection → revocation → RP-initiated logout.

import * as oidc from 'openid-client';

function check(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

// Waits for the browser to be sent to a URL starting with `prefix` (which nothing serves)
// and returns that URL. Playwright answers the visit locally where it can intercept it; a
// redirect that ends a `goto` is not intercepted, and fails to connect after it was seen.
export async function captureRedirect(page, prefix, navigate) {
  let resolveUrl;
  const captured = new Promise((resolve) => {
    resolveUrl = resolve;
  });
  const matcher = (url) => url.href.startsWith(prefix);
  const onRequest = (request) => {
    if (request.url().startsWith(prefix)) resolveUrl(request.url());
  };
  page.on('request', onRequest);
  await page.route(matcher, async (route) => {
    resolveUrl(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'received by the app' });
  });
  let failed = null;
  await navigate().catch((e) => {
    failed = e;
  });
  let timer;
  const url = await Promise.race([
    captured,
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), failed ? 1000 : 20_000);
    }),
  ]);
  clearTimeout(timer);
  page.off('request', onRequest);
  await page.unroute(matcher);
  if (!url) throw failed ?? new Error(`the browser was never sent to ${prefix}`);
  return new URL(url);
}

export async function relyingParty(page, cfg, diag) {
  const { issuer, client_id, client_secret, redirect_uri, post_logout_redirect_uri } = cfg;
  // Plain HTTP only because the test server runs on loopback without TLS.
  const options = { execute: [oidc.allowInsecureRequests] };

  diag.step = 'oidc-discovery';
  const config = await oidc.discovery(
    new URL(issuer),
    client_id,
    undefined,
    oidc.ClientSecretBasic(client_secret),
    options,
  );
  const meta = config.serverMetadata();
  check(meta.issuer === issuer, `discovered issuer ${meta.issuer}, expected ${issuer}`);

  diag.step = 'oidc-authorize';
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const authUrl = oidc.buildAuthorizationUrl(config, {
    redirect_uri,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await captureRedirect(page, redirect_uri, async () => {
    await page.goto(authUrl.href, { waitUntil: 'load' });
    // Signed in already, so civis asks only for consent.
    diag.step = 'oidc-consent';
    await page.getByRole('button', { name: 'Allow' }).click();
  });

  diag.step = 'oidc-code-exchange';
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims && claims.sub, 'validated ID token has a sub');
  check(claims.aud === client_id || claims.aud.includes(client_id), `aud ${claims.aud}`);
  check(tokens.token_type.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`);

  diag.step = 'oidc-userinfo';
  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);

  diag.step = 'oidc-refresh';
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
  check(refreshed.refresh_token !== tokens.refresh_token, 'refresh token rotated');

  diag.step = 'oidc-introspection';
  const live = await oidc.tokenIntrospection(config, refreshed.access_token);
  check(live.active === true, `fresh access token inactive: ${JSON.stringify(live)}`);

  diag.step = 'oidc-revocation';
  await oidc.tokenRevocation(config, refreshed.refresh_token);
  const revoked = await oidc.tokenIntrospection(config, refreshed.refresh_token);
  check(revoked.active === false, `revoked refresh token still active: ${JSON.stringify(revoked)}`);

  // A page on another site links to civis's logout with a genuine ID token of someone else:
  // a top-level cross-site navigation, which carries the SameSite=Lax session cookie.
  let forcedLogout = null;
  if (cfg.foreign_id_token) {
    diag.step = 'oidc-forced-logout';
    const attacker = 'http://127.0.0.1:43118';
    // Just the hint: the attacker names no client and no return address of their own.
    const forced = new URL(meta.end_session_endpoint);
    forced.searchParams.set('id_token_hint', cfg.foreign_id_token);
    const lure = `<!doctype html><title>Prize</title><a id="go" href="${forced.href}">Claim your prize</a>`;
    await page.route(`${attacker}/**`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: lure }),
    );
    await page.goto(`${attacker}/prize`, { waitUntil: 'load' });
    await Promise.all([page.waitForURL((u) => u.href.startsWith(issuer)), page.click('#go')]);
    await page.unroute(`${attacker}/**`);
    const asked = await page
      .getByRole('button', { name: 'Log out' })
      .isVisible()
      .catch(() => false);
    const sessionAfter = await page.evaluate(async () => (await fetch('/session')).status);
    forcedLogout = { asked, session_after: sessionAfter };
  }

  // The citizen's own record of who used their identity (CONTRACT.md §3, Your activity).
  diag.step = 'activity';
  await page.goto(new URL('/activity', issuer).href, { waitUntil: 'load' });
  const heading = (await page.getByRole('heading', { level: 1 }).textContent()).trim();
  const rows = await page.getByRole('row').allTextContents();
  const activity = {
    heading,
    login_row: rows.some((r) => r.includes('You signed in with a passkey')),
    consent_row: rows.some((r) => r.includes('You allowed')),
    received_row: rows.some((r) => r.includes('received your data')),
  };

  diag.step = 'oidc-logout';
  const logoutState = oidc.randomState();
  const back = await captureRedirect(page, post_logout_redirect_uri, () =>
    page.goto(
      oidc.buildEndSessionUrl(config, {
        id_token_hint: refreshed.id_token ?? tokens.id_token,
        post_logout_redirect_uri,
        state: logoutState,
      }).href,
      { waitUntil: 'load' },
    ),
  );
  check(back.searchParams.get('state') === logoutState, `logout returned state ${back.search}`);
  // The civis session is over.
  const sessionAfter = await page.goto(new URL('/session', issuer).href);

  return {
    issuer: meta.issuer,
    id_token_claims: claims,
    userinfo,
    scope: tokens.scope,
    refreshed_has_id_token: Boolean(refreshed.id_token),
    introspection: live,
    revoked_refresh_token_active: revoked.active,
    forced_logout: forcedLogout,
    logout_returned_state: back.searchParams.get('state') === logoutState,
    session_after_logout: sessionAfter.status(),
    activity,
  };
}
