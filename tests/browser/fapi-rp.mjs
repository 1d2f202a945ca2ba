// A FAPI 2.0 agency app as a stock relying party: panva's openid-client against a civis client
// registered with `profile: "fapi2"`. It authenticates with private_key_jwt, pushes its
// authorization request (PAR), binds its tokens to a DPoP key (civis asks for a server nonce
// first; openid-client retries with it), calls userinfo with DPoP and refreshes with DPoP.
// The browser is already signed in (e2e.mjs), so civis shows only the consent page.

import { webcrypto } from 'node:crypto';
import * as oidc from 'openid-client';
import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import { captureRedirect } from './oidc-rp.mjs';

function check(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export async function fapiRelyingParty(page, issuer, cfg, diag) {
  const { client_id, redirect_uri, kid, private_key_pkcs8_b64 } = cfg;
  const key = await webcrypto.subtle.importKey(
    'pkcs8',
    Buffer.from(private_key_pkcs8_b64, 'base64'),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  diag.step = 'fapi-discovery';
  const config = await oidc.discovery(
    new URL(issuer),
    client_id,
    undefined,
    oidc.PrivateKeyJwt({ key, kid }),
    { execute: [oidc.allowInsecureRequests] },
  );
  const meta = config.serverMetadata();
  check(meta.pushed_authorization_request_endpoint, 'discovery names the PAR endpoint');
  check(
    (meta.dpop_signing_alg_values_supported ?? []).includes('ES256'),
    'discovery names ES256 for DPoP',
  );

  const dpopKeys = await oidc.randomDPoPKeyPair('ES256');
  const DPoP = oidc.getDPoPHandle(config, dpopKeys);
  const thumbprint = await calculateJwkThumbprint(await exportJWK(dpopKeys.publicKey));

  diag.step = 'fapi-par';
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const authUrl = await oidc.buildAuthorizationUrlWithPAR(
    config,
    {
      redirect_uri,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    },
    { DPoP },
  );
  check(
    authUrl.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'),
    `the browser carries only a request_uri: ${authUrl.href}`,
  );
  check(!authUrl.searchParams.has('scope'), 'no parameters in the front channel');

  diag.step = 'fapi-consent';
  const callback = await captureRedirect(page, redirect_uri, async () => {
    await page.goto(authUrl.href, { waitUntil: 'load' });
    await page.getByRole('button', { name: 'Allow' }).click();
  });
  check(callback.searchParams.get('iss') === issuer, `iss in the response: ${callback.search}`);

  diag.step = 'fapi-code-exchange';
  const tokens = await oidc.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier: codeVerifier, expectedState: state, idTokenExpected: true },
    undefined,
    { DPoP },
  );
  check(tokens.token_type.toLowerCase() === 'dpop', `token_type ${tokens.token_type}`);
  const access = decodeJwt(tokens.access_token);
  check(access.cnf?.jkt === thumbprint, `cnf.jkt ${access.cnf?.jkt} is not the key's ${thumbprint}`);
  const claims = tokens.claims();

  diag.step = 'fapi-userinfo';
  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });

  diag.step = 'fapi-refresh';
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  check(refreshed.token_type.toLowerCase() === 'dpop', `refreshed token_type ${refreshed.token_type}`);
  check(
    decodeJwt(refreshed.access_token).cnf?.jkt === thumbprint,
    'the refreshed access token is bound to the same key',
  );
  // FAPI 2.0: no rotation; the same refresh token works again.
  const again = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });

  return {
    token_type: tokens.token_type,
    cnf_jkt_matches: access.cnf?.jkt === thumbprint,
    sub: claims.sub,
    userinfo_sub: userinfo.sub,
    refreshed_token_type: refreshed.token_type,
    refresh_rotated: Boolean(refreshed.refresh_token),
    refreshed_again: Boolean(again.access_token),
  };
}
