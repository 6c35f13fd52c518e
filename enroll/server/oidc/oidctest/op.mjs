// A real OpenID Provider for totpbox's tests: node's oidc-provider with
// the clients and accounts the test passes in OP_CONFIG (JSON), listening
// on 127.0.0.1 at a port of its choosing, which it prints as its first
// line ("listening PORT"). The issuer (OP_CONFIG.issuer) may be another
// address: the test's proxy in front of it.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const cfg = JSON.parse(process.env.OP_CONFIG);
const { default: Provider } = await import(pathToFileURL(join(cfg.modules, 'oidc-provider', 'lib', 'index.js')).href);

// name → groups (null: no groups claim), read again at every sign-in from
// the file the test may rewrite (OP.SetGroups).
import { readFileSync } from 'node:fs';
const accountsOf = () => JSON.parse(readFileSync(cfg.accountsFile, 'utf8'));

const provider = new Provider(cfg.issuer, {
  clients: cfg.clients,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  // Claims of the requested scopes go into the ID token of the code flow
  // too, as Entra ID, Okta, Keycloak and authentik put them there.
  conformIdTokenClaims: false,
  ttl: { IdToken: cfg.idTokenTTL || 3600 },
  cookies: { keys: ['totpbox test op cookie key'] },
  async findAccount(ctx, id) {
    const accounts = accountsOf();
    if (!(id in accounts)) return undefined;
    return {
      accountId: id,
      async claims() {
        const c = { sub: id, preferred_username: id, name: id };
        if (accounts[id] !== null) c.groups = accounts[id];
        return c;
      },
    };
  },
  // Consent is taken as given: the test signs in, nothing more.
  async loadExistingGrant(ctx) {
    const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (id) return ctx.oidc.provider.Grant.find(id);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile groups');
    grant.addOIDCClaims(['preferred_username', 'name', 'groups']);
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
