#!/usr/bin/env python3
"""Interoperability check: Authlib (a widely used OAuth client library) uses the machine-to-machine and
hardening features of a running AuthLedger server: the client_credentials grant with client_secret_basic
and with private_key_jwt (RFC 7523) client authentication, token introspection (RFC 7662), and pushed
authorization requests (RFC 9126).

    tools/interop/grants.py BASE_URL KEY_PEM [--kid rs-1] [--username U] [--password P]

KEY_PEM is the PEM file of the EC P-256 private key registered (public part) in the JWK Set of the client
`signed-service`. The tenant is the one the Swift GrantTests build (`grantsTenantYAML`): `reporting-service`
(client_secret m2m-secret, granted read:messages on https://api.example.com), `signed-service`
(private_key_jwt, granted read:messages write:messages) and `par-app` (client_secret par-secret, redirect
https://par.test/callback, must push its authorization requests).

Everything OAuth is Authlib's (token requests, client authentication, introspection, authorization
request parameters with PKCE); what Authlib has no client for (the PAR endpoint, the browser) is played
by `requests` with Authlib's client authentication; tokens are verified with joserfc against the
published JWKS. Prints one JSON line and exits 0 on success, 1 on any failure.
"""
import argparse
import json
import re
import sys
import time
import uuid
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from server_pages import follow_to

API = "https://api.example.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PAR_REDIRECT = "https://par.test/callback"
#: Seconds any one HTTP request may take: a server that stops answering fails the check, never hangs it.
TIMEOUT = 30


class Session(requests.Session):
    """A requests session whose requests time out (a server that stops answering fails the check)."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)




def expect(condition, message):
    if not condition:
        raise SystemExit(message)


def error_of(response, member="error"):
    try:
        return response.json().get(member)
    except ValueError:
        return None


def verify_access_token(token, keys, issuer, audience, subject):
    access = jwt.decode(token, keys, algorithms=["RS256", "EdDSA"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        sub={"essential": True, "value": subject},
    ).validate(access.claims)
    expect(access.header.get("typ") == "at+jwt", "access token typ is %r, not at+jwt" % access.header.get("typ"))
    return access


def client_credentials_secret(discovery, keys, details):
    """(a) client_credentials, client_secret_basic."""
    client = OAuth2Session(
        "reporting-service", "m2m-secret", token_endpoint_auth_method="client_secret_basic", default_timeout=TIMEOUT)
    token = client.fetch_token(discovery["token_endpoint"], grant_type="client_credentials", audience=API)
    expect(token["token_type"].lower() == "bearer", "token_type is %r" % token["token_type"])
    expect(token.get("scope") == "read:messages", "scope is %r" % token.get("scope"))
    expect("refresh_token" not in token and "id_token" not in token, "client_credentials gave more than an access token")
    access = verify_access_token(
        token["access_token"], keys, discovery["issuer"], API, "reporting-service@clients")
    details["client_credentials"] = {"scope": token["scope"], "sub": access.claims["sub"], "aud": access.claims["aud"]}
    return client


def private_key_jwt(discovery, keys, key, kid, details):
    """(b) client_credentials with private_key_jwt: Authlib's PrivateKeyJWT, then one assertion sent twice."""
    token_endpoint = discovery["token_endpoint"]
    expect("private_key_jwt" in discovery.get("token_endpoint_auth_methods_supported", []),
           "discovery does not list private_key_jwt")
    client = OAuth2Session("signed-service", key, token_endpoint_auth_method="private_key_jwt", default_timeout=TIMEOUT)
    auth = PrivateKeyJWT(token_endpoint, headers={"kid": kid}, alg="ES256")
    client.register_client_auth_method(auth)

    # Authlib's default assertion lives 3600 s; the server takes at most 600 s (RFC 7523 §3 lets it bound
    # the lifetime). Reported, not required.
    default = client.post(
        token_endpoint, data={"grant_type": "client_credentials", "audience": API},
        auth=client.client_auth("private_key_jwt"), withhold_token=True)
    details["authlib_default_assertion"] = {
        "status": default.status_code, "error": error_of(default), "description": error_of(default, "error_description")}

    # A fresh claims dict per request: Authlib adds the jti to the dict it is given, so a dict kept across
    # requests would send the same jti again.
    auth.claims = {"exp": int(time.time()) + 60}
    token = client.fetch_token(token_endpoint, grant_type="client_credentials", audience=API)
    expect(token.get("scope") == "read:messages write:messages", "signed-service scope is %r" % token.get("scope"))
    verify_access_token(token["access_token"], keys, discovery["issuer"], API, "signed-service@clients")

    # One assertion (audience: the issuer identifier), sent twice: used once only.
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "ES256", "kid": kid},
        {"iss": "signed-service", "sub": "signed-service", "aud": discovery["issuer"], "iat": now, "exp": now + 60,
         "jti": str(uuid.uuid4())},
        key)
    form = {"grant_type": "client_credentials", "audience": API,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    first = Session().post(token_endpoint, data=form)
    expect(first.status_code == 200, "a fresh assertion: %d %s" % (first.status_code, first.text[:300]))
    second = Session().post(token_endpoint, data=form)
    expect(second.status_code == 401 and error_of(second) == "invalid_client",
           "the same assertion again: %d %s" % (second.status_code, second.text[:300]))
    details["private_key_jwt"] = {"scope": token["scope"], "replay": [first.status_code, second.status_code, error_of(second)]}
    return token["access_token"]


def introspection(discovery, resource_server, token, details):
    """(c) introspection by reporting-service: an active token, garbage, and no authentication."""
    endpoint = discovery["introspection_endpoint"]
    response = resource_server.introspect_token(endpoint, token=token, token_type_hint="access_token")
    expect(response.status_code == 200, "introspection: %d %s" % (response.status_code, response.text[:300]))
    active = response.json()
    expect(active.get("active") is True, "signed-service's token is not active: %s" % active)
    expect(active.get("client_id") == "signed-service", "introspected client_id is %r" % active.get("client_id"))
    expect(active.get("scope") == "read:messages write:messages", "introspected scope is %r" % active.get("scope"))
    garbage = resource_server.introspect_token(endpoint, token="garbage").json()
    expect(garbage == {"active": False}, "garbage introspects as %s" % garbage)
    anonymous = Session().post(endpoint, data={"token": token})
    expect(anonymous.status_code == 401, "unauthenticated introspection: %d" % anonymous.status_code)
    expect("active" not in anonymous.json(), "unauthenticated introspection said something of the token")
    details["introspection"] = {"active": True, "client_id": active["client_id"], "garbage": False,
                                "anonymous": anonymous.status_code}


def pushed_request(discovery, keys, username, password, details):
    """(d) PAR for par-app: pushed, used once (a decision spends it), completed with PKCE; plain refused."""
    base = discovery["issuer"]
    par_endpoint = discovery["pushed_authorization_request_endpoint"]
    client = OAuth2Session(
        "par-app", "par-secret", scope="openid", redirect_uri=PAR_REDIRECT, code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic", default_timeout=TIMEOUT)
    verifier = generate_token(64)
    # Authlib makes the request's parameters (with the S256 challenge); they are pushed instead of sent.
    url, state = client.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier)
    parameters = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    expect(parameters.get("code_challenge_method") == "S256", "Authlib made no S256 challenge")
    pushed = client.post(par_endpoint, data=parameters, auth=client.client_auth("client_secret_basic"), withhold_token=True)
    expect(pushed.status_code == 201, "push: %d %s" % (pushed.status_code, pushed.text[:300]))
    body = pushed.json()
    request_uri = body.get("request_uri", "")
    expect(request_uri.startswith("urn:ietf:params:oauth:request_uri:"), "request_uri is %r" % request_uri)
    expect(body.get("expires_in") == 60, "expires_in is %r" % body.get("expires_in"))

    browser = Session()
    reference = discovery["authorization_endpoint"] + "?" + urlencode({"client_id": "par-app", "request_uri": request_uri})
    response = browser.get(reference, allow_redirects=False)
    expect(response.status_code == 302 and response.headers.get("Location", "").startswith("/login"),
           "request_uri: %d to %r" % (response.status_code, response.headers.get("Location")))
    # The decision that sent the browser to log in spent the request_uri.
    again = browser.get(reference, allow_redirects=False)
    expect(again.status_code == 400 and "Location" not in again.headers and "invalid_request_uri" in again.text,
           "request_uri again: %d %s" % (again.status_code, again.text[:300]))

    # The first one carries on: login, then a code for the pushed parameters, redeemed by Authlib.
    callback = follow_to(browser, base, response, PAR_REDIRECT, username, password)
    expect(callback.startswith(PAR_REDIRECT + "?"), "the pushed request ended at %r" % callback)
    # Authlib checks the state (the pushed one); PKCE is checked by the server.
    token = client.fetch_token(discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state)
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256", "EdDSA"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": base}, aud={"essential": True, "value": "par-app"}, sub={"essential": True},
    ).validate(id_token.claims)

    # A client that must push: a plain authorization request goes back to it with invalid_request.
    plain_url, _ = client.create_authorization_url(discovery["authorization_endpoint"], code_verifier=generate_token(64))
    plain = Session().get(plain_url, allow_redirects=False)
    location = plain.headers.get("Location", "")
    expect(plain.status_code == 302 and location.startswith(PAR_REDIRECT + "?"),
           "plain request: %d to %r" % (plain.status_code, location))
    expect(parse_qs(urlsplit(location).query).get("error") == ["invalid_request"], "plain request gave %r" % location)
    details["par"] = {"expires_in": body["expires_in"], "reused": again.status_code, "code_flow": True,
                      "plain": "invalid_request"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the server's issuer URL, ending in /")
    parser.add_argument("key", help="PEM file of signed-service's EC P-256 private key")
    parser.add_argument("--kid", default="rs-1")
    parser.add_argument("--username", default="alice@example.com")
    parser.add_argument("--password", default="correct horse battery staple")
    arguments = parser.parse_args()

    with open(arguments.key) as file:
        key = ECKey.import_key(file.read(), {"kid": arguments.kid})
    discovery = Session().get(urljoin(arguments.base, ".well-known/openid-configuration")).json()
    keys = KeySet.import_key_set(Session().get(discovery["jwks_uri"]).json())
    details = {}
    resource_server = client_credentials_secret(discovery, keys, details)
    signed_token = private_key_jwt(discovery, keys, key, arguments.kid, details)
    introspection(discovery, resource_server, signed_token, details)
    pushed_request(discovery, keys, arguments.username, arguments.password, details)
    print(json.dumps(dict({"ok": True}, **details)))


if __name__ == "__main__":
    try:
        main()
    except SystemExit as failure:
        if failure.code in (0, None):  # --help
            raise
        print(json.dumps({"ok": False, "reason": str(failure)}))
        sys.exit(1)
    except Exception as failure:  # noqa: BLE001 - any library error is a failed check
        print(json.dumps({"ok": False, "reason": "%s: %s" % (type(failure).__name__, failure)}))
        sys.exit(1)
