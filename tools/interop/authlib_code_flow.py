#!/usr/bin/env python3
"""Interoperability check: Authlib (a widely used OAuth client library) runs a PKCE authorization
code flow against a running AuthLedger server, then verifies the ID token with the server's JWKS.

    tools/interop/authlib_code_flow.py BASE_URL CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD [AUTH_METHOD]

AUTH_METHOD is the client's token endpoint authentication (client_secret_basic by default).

The browser part (login and consent pages) is played by `requests`; everything OAuth is Authlib's,
and the tokens are verified with joserfc (Authlib's JOSE library) against the published JWKS.
Prints one JSON line and exits 0 on success, 1 on any failure.
"""
import json
import sys
from urllib.parse import urljoin

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.jwk import KeySet
from server_pages import follow_to




def main():
    base, client_id, client_secret, redirect_uri, username, password = sys.argv[1:7]
    auth_method = sys.argv[7] if len(sys.argv) > 7 else "client_secret_basic"
    discovery = requests.get(urljoin(base, ".well-known/openid-configuration")).json()
    client = OAuth2Session(
        client_id, client_secret, scope="openid profile email", redirect_uri=redirect_uri,
        code_challenge_method="S256", token_endpoint_auth_method=auth_method)
    verifier = generate_token(64)
    nonce = generate_token(20)
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

    browser = requests.Session()
    response = browser.get(url, allow_redirects=False)
    callback = follow_to(browser, base, response, redirect_uri, username, password)

    # Authlib checks state, and the RFC 9207 iss is checked here.
    token = client.fetch_token(
        discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state)
    if "iss=" not in callback:
        raise SystemExit("no iss in the authorization response")

    keys = KeySet.import_key_set(requests.get(discovery["jwks_uri"]).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256", "EdDSA"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
    ).validate(id_token.claims)
    access = jwt.decode(token["access_token"], keys, algorithms=["RS256", "EdDSA"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": discovery["issuer"]}).validate(access.claims)
    if access.header.get("typ") != "at+jwt":
        raise SystemExit("access token typ is %r, not at+jwt" % access.header.get("typ"))
    print(json.dumps({
        "ok": True, "sub": id_token.claims["sub"], "token_type": token["token_type"],
        "access_token_typ": access.header.get("typ"), "scope": token.get("scope"),
    }))


if __name__ == "__main__":
    try:
        main()
    except SystemExit as failure:
        print(json.dumps({"ok": False, "reason": str(failure)}))
        sys.exit(1)
    except Exception as failure:  # noqa: BLE001 - any library error is a failed check
        print(json.dumps({"ok": False, "reason": "%s: %s" % (type(failure).__name__, failure)}))
        sys.exit(1)
