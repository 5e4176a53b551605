// Verify an access token the way a Node.js resource server would, with panva/jose:
// keys from the discovery document's jwks_uri, RS256 only, issuer, audience and typ checked.
// Usage: node verify.mjs DISCOVERY_URL AUDIENCE TOKEN  → prints the payload as JSON.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [discoveryUrl, audience, token] = process.argv.slice(2);
const discovery = await (await fetch(discoveryUrl)).json();
const keys = createRemoteJWKSet(new URL(discovery.jwks_uri));
const { payload, protectedHeader } = await jwtVerify(token, keys, {
  issuer: discovery.issuer,
  audience,
  algorithms: ["RS256"],
  typ: "at+jwt",
  requiredClaims: ["sub", "jti", "iat", "exp"],
});
console.log(JSON.stringify({ header: protectedHeader, payload }));
