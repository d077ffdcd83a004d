// A real OpenID Provider (oidc-provider, OpenID-certified) for the bridge's tests and demo.
//
//   node server.mjs CONFIG.json
//
// CONFIG: {issuer, port, keys: [private JWK], clients: [client metadata], accounts: [{username,
// password, sub, claims}]}. Written by dev/bridge_dev/idp.py, which also starts and stops this.
// Prints "ready <issuer>" on stdout once listening.
//
// Sign-in is a plain user name + password form (no dev interactions); consent is implied for the
// configured clients (first-party: the organization's own bridge). The accounts' claims (role,
// organization, practitioner_id, provisional) are released under the "bridge" scope and carried in
// the ID token itself. Access tokens are JWTs for the bridge's API (resource urn:peer-bridge:api,
// aud = config.api_audience, default "peer-bridge") with the same claims.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { Provider, errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byUsername = new Map(config.accounts.map((a) => [a.username, a]));
const bySub = new Map(config.accounts.map((a) => [a.sub, a]));
const BRIDGE_CLAIMS = ['role', 'organization', 'practitioner_id', 'provisional'];
// the bridge's API as a resource server: access tokens for it are JWTs (aud = the bridge's
// api_auth.audience) carrying the same claims, so an app can call the API with them
const API_RESOURCE = 'urn:peer-bridge:api';
const API_AUDIENCE = config.api_audience || 'peer-bridge';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const digest = (s) => createHash('sha256').update(String(s)).digest();

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin-top:1rem}input,button{font-size:1rem;min-height:44px;width:100%;box-sizing:border-box}
button{margin-top:1.25rem}.error{color:#a00;font-weight:bold}</style></head>
<body><main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

function loginForm(uid, clientName, error) {
  return page('Sign in', `<p>to continue to ${esc(clientName)}</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">User name</label><input id="username" name="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'profile', 'bridge'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], bridge: BRIDGE_CLAIMS },
  // the ID token carries the scope's claims (the bridge reads the person from it, not from userinfo)
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  async extraTokenClaims(_ctx, token) {
    if (token.kind !== 'AccessToken') return undefined;
    const account = bySub.get(token.accountId);
    return account ? Object.fromEntries(BRIDGE_CLAIMS.filter((c) => c in account.claims).map((c) => [c, account.claims[c]])) : undefined;
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API_RESOURCE,
      useGrantedResource: () => true,
      async getResourceServerInfo(_ctx, indicator) {
        if (indicator !== API_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: 'bridge',
          audience: API_AUDIENCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', `${form}<p>Sign out of the identity provider too?</p>
<button form="op.logoutForm" type="submit" name="logout" value="yes">Yes, sign out</button>
<button form="op.logoutForm" type="submit">No, stay signed in here</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p>You are signed out.</p>');
      },
    },
  },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    const account = bySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, name: account.name, preferred_username: account.username, ...account.claims };
      },
    };
  },
});
provider.proxy = false;

// oidc-provider 9 matches post-logout redirects of native clients on loopback on any port, as it does
// their redirect_uris (RFC 8252 §7.3); 8.x (the last line that runs on Node 20) only the latter.
// Tests need it: one provider serves every test's bridge, each on a port of its own.
const postLogoutAllowed = provider.Client.prototype.postLogoutRedirectUriAllowed;
provider.Client.prototype.postLogoutRedirectUriAllowed = function allowed(value) {
  if (postLogoutAllowed.call(this, value)) return true;
  if (this.applicationType !== 'native') return false;
  const strip = (u) => {
    try {
      const url = new URL(u);
      if (url.protocol !== 'http:' || !['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)) return null;
      url.port = '';
      return url.href;
    } catch {
      return null;
    }
  };
  const wanted = strip(value);
  return wanted !== null && this.postLogoutRedirectUris.some((allowedUri) => strip(allowedUri) === wanted);
};

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function checkPassword(username, password) {
  const account = byUsername.get(username);
  // compare digests in constant time, and do the same work for an unknown user name
  const ok = timingSafeEqual(digest(password), digest(account ? account.password : randomBytes(16)));
  return ok && account ? account : undefined;
}

function send(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Frame-Options': 'DENY',
    // no form-action: the sign-in form's answer redirects to the client, on another origin
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}

// first-party clients: what they ask for is granted without a consent screen
async function consent(req, res, details) {
  const { missingOIDCScope = [], missingOIDCClaims = [], missingResourceScopes = {} } = details.prompt.details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  if (missingOIDCScope.length) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims.length) grant.addOIDCClaims(missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Sign in', '<p>This sign-in has expired.</p>'));
  const client = await provider.Client.find(details.params.client_id);
  const clientName = client?.clientName || details.params.client_id;
  if (details.prompt.name === 'consent') return consent(req, res, details);
  if (req.method === 'GET' && !action) return send(res, 200, loginForm(uid, clientName, ''));
  if (req.method === 'POST' && action === 'abort') {
    const result = { error: 'access_denied', error_description: 'the person cancelled the sign-in' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const account = checkPassword(form.get('username') || '', form.get('password') || '');
    if (!account) return send(res, 401, loginForm(uid, clientName, 'Wrong user name or password.'));
    const result = { login: { accountId: account.sub } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return send(res, 405, page('Sign in', '<p>Not allowed.</p>'));
}

const callback = provider.callback();
const ROUTE = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/;

const server = createServer(async (req, res) => {
  const match = ROUTE.exec(new URL(req.url, config.issuer).pathname);
  if (!match) return callback(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    // an expired or unknown interaction (cookie gone, server restarted): never a stack trace
    send(res, 400, page('Sign in', `<p>This sign-in cannot go on (${esc(err.name || 'error')}). Start again.</p>`));
  }
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`ready ${config.issuer}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
