// A test OpenID Connect provider for the console's browser tests (tests/console).
//
// Listens on loopback only, at http://localhost:${IDP_PORT}, with one public client,
// "tessera-console" (authorization code, PKCE S256, no client secret), redirecting to
// ${CONSOLE_REDIRECT_URI}: one URI, or several separated by commas (the console may name
// its own host as 127.0.0.1 or as localhost). Sign-in uses oidc-provider's built-in
// development interactions: a form with a login (the account's email) and any password,
// button "Sign-in", then a consent page with a button "Continue". Only the accounts in
// ACCOUNTS below exist. Prints "IDP READY <issuer>" once it accepts connections.
//
// Run: IDP_PORT=9011 CONSOLE_REDIRECT_URI=http://127.0.0.1:8080/login/oidc/callback node idp.mjs

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const port = Number.parseInt(process.env.IDP_PORT ?? '', 10);
const redirectUris = (process.env.CONSOLE_REDIRECT_URI ?? '')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);
if (!Number.isInteger(port) || port <= 0 || redirectUris.length === 0) {
  console.error('idp.mjs: set IDP_PORT and CONSOLE_REDIRECT_URI');
  process.exit(2);
}

const issuer = `http://localhost:${port}`;

// The people this provider knows. The subject is the email address.
const ACCOUNTS = new Map(
  [
    { email: 'alice@example.com', name: 'Alice Owner', groups: ['tessera-owners'] },
    { email: 'rob@example.com', name: 'Rob Reader', groups: ['tessera-readers'] },
  ].map((account) => [account.email, account]),
);

async function findAccount(_ctx, sub) {
  const account = ACCOUNTS.get(sub);
  if (!account) {
    return undefined;
  }
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        email: account.email,
        email_verified: true,
        name: account.name,
        groups: account.groups,
      };
    },
  };
}

// A fresh signing key per run: tests read it from the JWKS endpoint.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-idp', alg: 'RS256', use: 'sig' };

const configuration = {
  clients: [
    {
      client_id: 'tessera-console',
      token_endpoint_auth_method: 'none',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  // PKCE with S256 only, required on every authorization request.
  pkce: { methods: ['S256'], required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // Put the requested claims in the ID token itself, not only at the userinfo endpoint.
  conformIdTokenClaims: false,
  findAccount,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: true },
  },
  // Lifetimes in seconds: a test run is short.
  ttl: {
    AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600,
  },
};

const provider = new Provider(issuer, configuration);

provider.on('server_error', (_ctx, error) => {
  console.error('idp.mjs: server_error', error);
});

// "localhost" may resolve to 127.0.0.1, ::1 or both: listen on each loopback address the
// machine has (IPv4 is required, IPv6 only where the loopback interface has it).
const servers = [];

function listen(host) {
  return new Promise((resolve, reject) => {
    const server = createServer(provider.callback());
    server.once('error', reject);
    server.listen(port, host, () => {
      servers.push(server);
      resolve();
    });
  });
}

await listen('127.0.0.1');
await listen('::1').catch((error) => {
  console.error(`idp.mjs: not listening on [::1]:${port} (${error.code})`);
});
console.log(`IDP READY ${issuer}`);

function shutdown() {
  for (const server of servers) {
    server.close();
    // Keep-alive connections from the browser would hold close() open.
    server.closeAllConnections();
  }
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
