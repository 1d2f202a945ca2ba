// civis.js: WebAuthn for the enrolment, login and signature approval pages. No framework, no build step.
// The server renders everything else; this file only runs the passkey ceremonies.
"use strict";
(function () {
  const main = document.getElementById("main");
  const status = document.getElementById("status");
  if (!main || !status) return;

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  function toBuffer(b64url) {
    let s = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, body, signal) {
    const resp = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
      signal: signal,
    });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) {
      throw new Error((data && data.detail) || "Something went wrong. Please try again.");
    }
    return data;
  }

  function explain(err) {
    if (err && err.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out. You can try again.";
    }
    if (err && err.name === "InvalidStateError") {
      return "This device already holds a passkey for your account.";
    }
    return (err && err.message) || "Something went wrong. Please try again.";
  }

  function supported() {
    return window.PublicKeyCredential && navigator.credentials;
  }

  // Enrolment: create a discoverable passkey with the code from the link.
  const create = document.getElementById("create");
  if (create) {
    create.addEventListener("click", async function () {
      if (!supported()) { say("This browser cannot create passkeys.", "error"); return; }
      create.disabled = true;
      say("Follow your device's instructions to create the passkey.");
      try {
        const start = await post("/enrol/start", { code: main.dataset.code });
        const pk = start.options.publicKey;
        pk.challenge = toBuffer(pk.challenge);
        pk.user.id = toBuffer(pk.user.id);
        (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
        const cred = await navigator.credentials.create({ publicKey: pk });
        await post("/enrol/finish", {
          ceremony: start.ceremony,
          credential: {
            id: cred.id,
            rawId: toB64url(cred.rawId),
            type: cred.type,
            response: {
              attestationObject: toB64url(cred.response.attestationObject),
              clientDataJSON: toB64url(cred.response.clientDataJSON),
              transports: cred.response.getTransports ? cred.response.getTransports() : [],
            },
            extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
          },
        });
        create.hidden = true;
        say("Passkey created. You can now sign in with it.", "ok");
        const next = document.createElement("p");
        next.innerHTML = '<a href="/login">Go to sign in</a>';
        main.appendChild(next);
        next.querySelector("a").focus();
      } catch (err) {
        say(explain(err), "error");
        create.disabled = false;
        create.focus();
      }
    });
  }

  // Login: usernameless. The button runs a modal request; where the browser offers it, the
  // input also offers saved passkeys as autofill (conditional mediation).
  const signin = document.getElementById("signin");
  if (signin) {
    let pending = null;

    async function login(conditional) {
      // The autofill request is abortable from its very start, so that a click while its
      // challenge is still being fetched cancels it too (else both would sign in).
      const abort = conditional ? new AbortController() : null;
      if (abort) pending = abort;
      const start = await post("/login/start", null, abort ? abort.signal : undefined);
      if (abort) abort.signal.throwIfAborted();
      const pk = start.options.publicKey;
      pk.challenge = toBuffer(pk.challenge);
      (pk.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
      const request = { publicKey: pk };
      if (abort) {
        request.mediation = "conditional";
        request.signal = abort.signal;
      }
      const cred = await navigator.credentials.get(request);
      pending = null;
      const done = await post("/login/finish", {
        ceremony: start.ceremony,
        return_to: main.dataset.returnTo || null,
        credential: {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            authenticatorData: toB64url(cred.response.authenticatorData),
            clientDataJSON: toB64url(cred.response.clientDataJSON),
            signature: toB64url(cred.response.signature),
            userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
          },
          extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
        },
      });
      signin.hidden = true;
      say("Signed in as " + done.display_name + ".", "ok");
      if (done.redirect) window.location.assign(done.redirect);
    }

    signin.addEventListener("click", async function () {
      if (!supported()) { say("This browser cannot use passkeys.", "error"); return; }
      if (pending) { pending.abort(); pending = null; }
      signin.disabled = true;
      say("Follow your device's instructions to use your passkey.");
      try {
        await login(false);
      } catch (err) {
        say(explain(err), "error");
        signin.disabled = false;
        signin.focus();
      }
    });

    if (supported() && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        login(true).catch(function (err) {
          if (err && err.name !== "AbortError") say(explain(err), "error");
        });
      });
    }
  }

  // Approval of a sign request: the challenge the server sends commits to exactly the
  // documents listed on this page; the button signs them with the official's passkey.
  const approve = document.getElementById("approve");
  const reject = document.getElementById("reject");
  if (reject) {
    reject.addEventListener("click", async function () {
      reject.disabled = true;
      try {
        await post("/sign/requests/" + encodeURIComponent(main.dataset.request) + "/reject", null);
        reject.hidden = true;
        if (approve) approve.hidden = true;
        say("Rejected: nothing was signed.", "ok");
      } catch (err) {
        say(explain(err), "error");
        reject.disabled = false;
      }
    });
  }
  if (approve) {
    approve.addEventListener("click", async function () {
      if (!supported()) { say("This browser cannot use passkeys.", "error"); return; }
      approve.disabled = true;
      say("Follow your device's instructions to use your passkey.");
      const base = "/sign/requests/" + encodeURIComponent(main.dataset.request);
      try {
        const start = await post(base + "/start", null);
        const pk = start.options.publicKey;
        pk.challenge = toBuffer(pk.challenge);
        (pk.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
        const cred = await navigator.credentials.get({ publicKey: pk });
        await post(base + "/finish", {
          ceremony: start.ceremony,
          credential: {
            id: cred.id,
            rawId: toB64url(cred.rawId),
            type: cred.type,
            response: {
              authenticatorData: toB64url(cred.response.authenticatorData),
              clientDataJSON: toB64url(cred.response.clientDataJSON),
              signature: toB64url(cred.response.signature),
              userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
            },
            extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
          },
        });
        approve.hidden = true;
        if (reject) reject.hidden = true;
        say("Signed", "ok");
      } catch (err) {
        say(explain(err), "error");
        approve.disabled = false;
        approve.focus();
      }
    });
  }
})();
