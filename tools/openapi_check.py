#!/usr/bin/env python3
"""Checks docs/openapi.yaml against what a running `authledger serve` really answers.

    python3 tools/openapi_check.py --bin DIR [--spec docs/openapi.yaml]

DIR holds the built `authledger` executable. The script starts `authledger serve` on an empty journal in
a temporary directory and a free port, with a tenant file: the built-in demo tenant (client demo-app with
secret demo-secret, redirect URI http://127.0.0.1:PORT/callback, which is also its one allowed logout URL)
and a machine-to-machine client, reporting-service, with a client grant for the demo API. Then it plays a
browser and clients: the full login -> consent -> code -> token -> userinfo -> refresh -> revoke flow,
form_post, DPoP-bound tokens, POST /authorize and the token in a POST /userinfo form, client credentials,
token introspection, a pushed authorization request and the /authorize request that uses it, a denied
consent, RP-initiated logout at /oidc/logout and /logout (refusals, the confirmation form, an
id_token_hint of the session), the login throttle, and the error cases of every endpoint. Redirects are
never followed; the page forms are parsed and submitted as a browser would (hidden fields, CSRF token,
cookies).

Every request and response is validated with openapi-core against the document. A request the script
sends on purpose outside the document (a missing required parameter, a value outside an enum) must be
refused by the document's request validation; its response must still be documented. Every path and
method of the document must be exercised at least once.

Prints `openapi: N operations, M responses validated` and exits 0, or prints each problem (naming the
operation and the validation error) and exits 1; 2 when DIR holds no executable. The server is stopped
either way. openapi-core, requests and cryptography (for the DPoP proofs) are installed with pip when
missing.
"""
import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

from authledger_e2e import (AUDIENCE, CLIENT_ID, CLIENT_SECRET, DEMO_USER_ID, PASSWORD, USERNAME, DPoPKey, Server, ServerStartError,
                            b64url, binaries, demo_redirect_uri, free_port, install_missing, pkce_pair)

REQUIREMENTS = [("requests", "requests"), ("openapi_core", "openapi-core"), ("cryptography", "cryptography")]

install_missing(REQUIREMENTS)

import requests  # noqa: E402
import yaml  # noqa: E402  (a dependency of openapi-core)
from openapi_core import OpenAPI  # noqa: E402
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse  # noqa: E402
from openapi_core.exceptions import OpenAPIError  # noqa: E402

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# The machine-to-machine client the tenant adds to the demo tenant (client_secret_basic, the default).
M2M_CLIENT_ID = "reporting-service"
M2M_SECRET = "m2m-secret"
M2M_SCOPE = "read:messages"

# The demo tenant (Sources/AuthCore/Tenant/DemoTenant.swift, as authledger_e2e names it) for the issuer {base},
# with the demo callback as demo-app's logout URL (RP-Initiated Logout), plus reporting-service and its client grant.
TENANT = """\
tenant:
  issuer: {base}
apis:
  - identifier: {audience}
    name: Example API
    scopes: [read:messages, write:messages]
    allow_offline_access: true
    skip_consent_for_first_party: true
clients:
  - client_id: {client_id}
    name: Demo App
    app_type: regular_web
    client_secret: {client_secret}
    token_endpoint_auth_method: client_secret_post
    redirect_uris: [{redirect_uri}]
    allowed_logout_urls: [{redirect_uri}]
    grant_types: [authorization_code, refresh_token]
    first_party: false
    connections: [Username-Password-Authentication]
  - client_id: {m2m_client_id}
    name: Reporting Service
    app_type: non_interactive
    client_secret: {m2m_secret}
    grant_types: [client_credentials]
client_grants:
  - client_id: {m2m_client_id}
    audience: {audience}
    scopes: [{m2m_scope}]
connections:
  - name: Username-Password-Authentication
    users:
      - user_id: "{user_id}"
        email: {username}
        password: {password}
"""


def write_tenant(path, base):
    with open(path, "w") as handle:
        handle.write(TENANT.format(
            base=base, audience=AUDIENCE, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=demo_redirect_uri(base),
            m2m_client_id=M2M_CLIENT_ID, m2m_secret=M2M_SECRET, m2m_scope=M2M_SCOPE, user_id=DEMO_USER_ID, username=USERNAME,
            password=PASSWORD))


class Failure(Exception):
    """A step whose outcome makes the rest of the run meaningless."""


def describe(error):
    """An openapi-core error, reduced to its kind and the JSON Schema messages beneath it (values cut short)."""
    messages, causes = [], []
    cause = error
    while cause is not None:
        causes.append(str(cause))
        for schema_error in getattr(cause, "schema_errors", ()):
            where = "" if schema_error.json_path == "$" else schema_error.json_path + ": "
            messages.append(where + schema_error.message)
        cause = cause.__cause__
    text = "; ".join(messages or dict.fromkeys(causes))
    return f"{type(error).__name__}: {text if len(text) <= 300 else text[:300] + '...'}"


class Checker:
    """Sends requests without following redirects and validates each exchange against the document."""

    def __init__(self, spec_path, base):
        self.openapi = OpenAPI.from_file_path(spec_path)
        with open(spec_path) as handle:
            paths = yaml.safe_load(handle)["paths"]
        self.operations = {(method.upper(), path) for path, item in paths.items() for method in item if method in HTTP_METHODS}
        self.base = base
        self.covered = set()
        self.responses = 0
        self.problems = {}

    def call(self, session, method, url, expect, *, request_valid=True, **kwargs):
        """Sends one request; `expect` is the status (or statuses) the scenario needs to go on."""
        response = session.request(method, urljoin(self.base, url), allow_redirects=False, timeout=60, **kwargs)
        operation = f"{method} {urlparse(response.url).path}"
        expected = expect if isinstance(expect, tuple) else (expect,)
        if response.status_code not in expected:
            wanted = " or ".join(map(str, expected))
            raise Failure(f"{operation}: expected {wanted}, got {response.status_code}: {response.text[:300]}")
        self.validate(operation, response, request_valid)
        return response

    def validate(self, operation, response, request_valid):
        request = RequestsOpenAPIRequest(response.request)
        try:
            self.openapi.validate_request(request)
        except OpenAPIError as error:
            if request_valid:
                self.problem(f"{operation}: request does not match the document: {describe(error)}")
        else:
            if not request_valid:
                sent = response.request.body or response.url
                self.problem(f"{operation}: the document accepts a request sent as invalid: {sent}")
        try:
            self.openapi.validate_response(request, RequestsOpenAPIResponse(response))
        except OpenAPIError as error:
            self.problem(f"{operation} -> {response.status_code}: {describe(error)}")
        self.covered.add((response.request.method, urlparse(response.url).path))
        self.responses += 1

    def problem(self, text):
        self.problems[text] = self.problems.get(text, 0) + 1

    def uncovered(self):
        return sorted(self.operations - self.covered, key=lambda operation: (operation[1], operation[0]))


@dataclass
class Form:
    action: str
    fields: dict = field(default_factory=dict)
    buttons: list = field(default_factory=list)


class FormParser(HTMLParser):
    """The forms of a page: each one's action, named fields, and submit buttons (name, value)."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self.in_form = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append(Form(action=attributes.get("action") or ""))
            self.in_form = True
        elif self.in_form and tag in ("input", "button") and attributes.get("name"):
            kind = attributes.get("type") or ("submit" if tag == "button" else "text")
            if kind == "submit":
                self.forms[-1].buttons.append((attributes["name"], attributes.get("value") or ""))
            else:
                self.forms[-1].fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


def page_form(response):
    parser = FormParser()
    parser.feed(response.text)
    if not parser.forms:
        raise Failure(f"{urlparse(response.url).path}: the page has no form")
    return parser.forms[0]


class Agent:
    """A browser or a client: its own cookies, every exchange validated by the checker."""

    def __init__(self, checker):
        self.checker = checker
        self.session = requests.Session()

    def get(self, url, expect, **kwargs):
        return self.checker.call(self.session, "GET", url, expect, **kwargs)

    def post(self, url, expect, **kwargs):
        return self.checker.call(self.session, "POST", url, expect, **kwargs)

    def follow(self, response, expect, **kwargs):
        return self.get(response.headers["Location"], expect, **kwargs)

    def submit(self, page, expect, button=None, request_valid=True, **values):
        """Posts the page's form as a browser would: its hidden fields, the typed values, the pressed button."""
        form = page_form(page)
        data = {**form.fields, **values}
        if button is not None:
            if button not in form.buttons:
                raise Failure(f"{urlparse(page.url).path}: the form has no button {button}")
            data[button[0]] = button[1]
        return self.post(urljoin(page.url, form.action), expect, data=data, request_valid=request_valid)


def query_of(location):
    parsed = urlparse(location)
    return {name: values[0] for name, values in parse_qs(parsed.fragment or parsed.query).items()}


def expect_equal(what, actual, expected):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def expect_error(body, error):
    expect_equal("error", body.get("error"), error)


class Scenario:
    """The requests the check makes, against the demo tenant of a server at `base`."""

    def __init__(self, checker, base):
        self.checker = checker
        self.base = base
        self.redirect = demo_redirect_uri(base)
        self.client = Agent(checker)

    def authorize_parameters(self, **parameters):
        query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": self.redirect, **parameters}
        return {name: value for name, value in query.items() if value is not None}

    def authorize_url(self, **parameters):
        return "authorize?" + urlencode(self.authorize_parameters(**parameters))

    def token(self, expect, request_valid=True, dpop=None, **form):
        """A token request by the demo client (client_secret_post); returns the JSON body."""
        data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}
        headers = {"DPoP": dpop} if dpop else {}
        return self.client.post("oauth/token", expect, data=data, headers=headers, request_valid=request_valid).json()

    def revoke(self, expect, request_valid=True, **form):
        data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}
        return self.client.post("oauth/revoke", expect, data=data, request_valid=request_valid).json()

    def machine_token(self, expect, request_valid=True, **form):
        """A client credentials request by reporting-service (client_secret_basic); returns the JSON body."""
        data = {"grant_type": "client_credentials", **form}
        return self.client.post("oauth/token", expect, data=data, auth=(M2M_CLIENT_ID, M2M_SECRET), request_valid=request_valid).json()

    def introspect(self, expect, token):
        """An introspection request by reporting-service (client_secret_basic); returns the JSON body."""
        return self.client.post("oauth/introspect", expect, data={"token": token}, auth=(M2M_CLIENT_ID, M2M_SECRET)).json()

    def userinfo(self, expect, token, method="GET", scheme="Bearer", dpop=None, request_valid=True):
        """A UserInfo request; returns the JSON body."""
        headers = {"Authorization": f"{scheme} {token}", **({"DPoP": dpop} if dpop else {})}
        response = self.checker.call(self.client.session, method, "userinfo", expect, headers=headers, request_valid=request_valid)
        return response.json()

    def run(self):
        self.metadata()
        self.authorization_errors()
        browser = Agent(self.checker)
        self.redeem_refresh_revoke(*self.first_authorization(browser))
        self.token_errors()
        self.revocation_errors()
        self.userinfo_errors()
        self.client_credentials_and_introspection()
        self.pushed_request()
        self.form_post_and_dpop(browser)
        self.scope_and_replay(browser)
        self.denied_consent(browser)
        self.logout(browser)
        self.login_throttle()

    def metadata(self):
        health = self.client.get("healthz", 200).json()
        expect_equal("healthz status", health["status"], "ok")
        discovery = self.client.get(".well-known/openid-configuration", 200).json()
        expect_equal("discovery issuer", discovery["issuer"], self.base)
        expect_equal("token_endpoint", discovery["token_endpoint"], self.base + "oauth/token")
        expect_equal("introspection_endpoint", discovery["introspection_endpoint"], self.base + "oauth/introspect")
        expect_equal("pushed_authorization_request_endpoint", discovery["pushed_authorization_request_endpoint"], self.base + "oauth/par")
        expect_equal("end_session_endpoint", discovery["end_session_endpoint"], self.base + "oidc/logout")
        expect_equal("back-channel logout", (discovery["backchannel_logout_supported"], discovery["backchannel_logout_session_supported"]),
                     (True, False))
        keys = self.client.get(".well-known/jwks.json", 200).json()["keys"]
        expect_equal("JWKS algorithms", sorted(key["alg"] for key in keys), ["EdDSA", "RS256"])
        metrics = self.client.get("metrics", 200).text
        if "authledger_journal_sequence" not in metrics:
            raise Failure("GET /metrics: no authledger_journal_sequence")

    def authorization_errors(self):
        browser = Agent(self.checker)
        browser.get(self.authorize_url(client_id="no-such-client", scope="openid"), 400)
        browser.get(self.authorize_url(client_id=None, scope="openid"), 400, request_valid=False)
        browser.get(self.authorize_url(state="s" * 9000), 414)
        browser.get(self.authorize_url() + "".join(f"&extra{number}=1" for number in range(64)), 400)
        # POST /authorize (OIDC Core §3.1.2.1): the same parameters in a form body, the same answers.
        browser.post("authorize", 400, data=self.authorize_parameters(client_id="no-such-client", scope="openid"))
        browser.post("authorize", 400, data=self.authorize_parameters(client_id=None, scope="openid"), request_valid=False)
        browser.post("authorize", 413, data=self.authorize_parameters(state="s" * 9000))
        to_login = browser.post("authorize", 302, data=self.authorize_parameters(scope="openid", state="post"))
        if not to_login.headers["Location"].startswith("/login?"):
            raise Failure(f"POST /authorize: redirected to {to_login.headers['Location']}, not to the login page")
        # An OpenID request without an API ignores scopes the server does not define: on to the login page.
        to_login = browser.get(self.authorize_url(scope="openid no:such:scope", state="ignored"), 302)
        if not to_login.headers["Location"].startswith("/login?"):
            raise Failure(f"GET /authorize (undefined scope ignored): redirected to {to_login.headers['Location']}")
        errors = {
            "invalid_scope": browser.get(self.authorize_url(scope="openid no:such:scope", audience=AUDIENCE, state="e1"), 302),
            "unauthorized_client": browser.get(self.authorize_url(response_type="token", nonce="n", state="e2"), 302),
            "unsupported_response_type": browser.get(
                self.authorize_url(response_type="bogus", state="e3"), 302, request_valid=False),
            "login_required": browser.get(self.authorize_url(scope="openid", prompt="none", state="e4"), 302),
            "request_not_supported": browser.post(
                "authorize", 302, data=self.authorize_parameters(scope="openid", request="eyJhbGciOiJub25lIn0.e30.", state="e5")),
            "request_uri_not_supported": browser.get(
                self.authorize_url(scope="openid", request_uri="https://client.example/request.jwt", state="e6"), 302),
            "invalid_request": browser.get(self.authorize_url(scope="openid", claims="not json", state="e7"), 302),
        }
        for error, response in errors.items():
            location = response.headers["Location"]
            if not location.startswith(self.redirect):
                raise Failure(f"GET /authorize ({error}): redirected to {location}")
            parameters = query_of(location)
            expect_equal("redirected error", parameters.get("error"), error)
            expect_equal("iss of the error redirect", parameters.get("iss"), self.base)

    def first_authorization(self, browser):
        """Login, consent and code, with every page's error cases on the way; returns the code and PKCE verifier."""
        verifier, challenge = pkce_pair(48)
        url = self.authorize_url(
            scope="openid profile email offline_access", audience=AUDIENCE, state="flow-1", nonce="nonce-1",
            code_challenge=challenge, code_challenge_method="S256")
        to_login = browser.get(url, 302)
        if "al_bind" not in browser.session.cookies:
            raise Failure("GET /authorize: no al_bind cookie was set")
        interaction = query_of(to_login.headers["Location"])["state"]
        login_page = browser.follow(to_login, 200)

        # Pages that are not the one the interaction waits for send the browser back to resume.
        browser.get(f"consent?state={interaction}", 302)
        browser.get(f"organization?state={interaction}", 302)
        csrf = page_form(login_page).fields["csrf"]
        browser.post("organization", 400, data={"state": interaction, "csrf": csrf, "organization": "org_none"})

        wrong = browser.submit(login_page, 401, username=USERNAME, password="wrong password")
        browser.submit(wrong, 403, username=USERNAME, password=PASSWORD, csrf="forged")
        browser.post("login", 403, data={"state": interaction, "username": USERNAME, "password": PASSWORD}, request_valid=False)
        browser.get("login?state=no-such-interaction", 400)
        browser.post("login", 413, data={"state": interaction, "csrf": csrf, "username": "u" * 70_000, "password": "p"},
                     request_valid=False)
        logged_in = browser.submit(wrong, 302, username=USERNAME, password=PASSWORD)
        if "al_session" not in browser.session.cookies:
            raise Failure("POST /login: no al_session cookie was set")

        to_consent = browser.follow(logged_in, 302)
        stranger = Agent(self.checker)
        stranger.get(to_consent.headers["Location"], 403)
        stranger.get(logged_in.headers["Location"], 403)
        consent_page = browser.follow(to_consent, 200)
        browser.submit(consent_page, 400, action="maybe", request_valid=False)
        accepted = browser.submit(consent_page, 302, button=("action", "accept"))
        to_client = browser.follow(accepted, 302)
        browser.follow(accepted, 400)  # the interaction is complete

        location = to_client.headers["Location"]
        if not location.startswith(self.redirect + "?"):
            raise Failure(f"GET /authorize/resume: redirected to {location}")
        response = query_of(location)
        expect_equal("state", response.get("state"), "flow-1")
        expect_equal("iss", response.get("iss"), self.base)
        browser.follow(to_client, 200)
        return response["code"], verifier

    def redeem_refresh_revoke(self, code, verifier):
        """Code -> tokens -> userinfo -> refresh (rotated) -> revoke, and the refusals that follow."""
        tokens = self.token(200, grant_type="authorization_code", code=code, redirect_uri=self.redirect, code_verifier=verifier)
        for name in ("id_token", "refresh_token"):
            if name not in tokens:
                raise Failure(f"POST /oauth/token: no {name} for the scope {tokens.get('scope')!r}")
        expect_equal("token_type", tokens["token_type"], "Bearer")
        claims = self.userinfo(200, tokens["access_token"])
        expect_equal("userinfo", (claims.get("sub"), claims.get("email")), (DEMO_USER_ID, USERNAME))
        self.userinfo(200, tokens["access_token"], method="POST")
        # RFC 6750 §2.2: the token in a form body instead; both ways at once, or an empty one, is malformed.
        by_form = self.client.post("userinfo", 200, data={"access_token": tokens["access_token"]}).json()
        expect_equal("userinfo by form", by_form.get("sub"), DEMO_USER_ID)
        both = self.client.post(
            "userinfo", 400, data={"access_token": tokens["access_token"]}, headers={"Authorization": f"Bearer {tokens['access_token']}"})
        expect_error(both.json(), "invalid_request")
        expect_error(self.client.post("userinfo", 400, data={"access_token": ""}, request_valid=False).json(), "invalid_request")

        refreshed = self.token(200, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        if refreshed.get("refresh_token") in (None, tokens["refresh_token"]):
            raise Failure("POST /oauth/token (refresh_token): the refresh token was not rotated")
        expect_equal("introspection of the rotated refresh token", self.introspect(200, tokens["refresh_token"]), {"active": False})
        current = self.introspect(200, refreshed["refresh_token"])
        expect_equal("introspection of the current refresh token", (current.get("active"), current.get("token_type")), (True, "refresh_token"))
        narrowed = self.token(400, grant_type="refresh_token", refresh_token=refreshed["refresh_token"], scope="openid admin")
        expect_error(narrowed, "invalid_scope")

        expect_equal("revocation", self.revoke(200, token=refreshed["access_token"], token_type_hint="access_token"), {})
        expect_equal("introspection of a revoked access token", self.introspect(200, refreshed["access_token"]), {"active": False})
        expect_error(self.userinfo(401, refreshed["access_token"]), "invalid_token")
        expect_equal("revocation", self.revoke(200, token=refreshed["refresh_token"]), {})
        expect_error(self.token(400, grant_type="refresh_token", refresh_token=refreshed["refresh_token"]), "invalid_grant")
        expect_error(self.token(400, grant_type="refresh_token", refresh_token=tokens["refresh_token"]), "invalid_grant")

    def token_errors(self):
        form = {"grant_type": "authorization_code", "code": "no-such-code", "redirect_uri": self.redirect}
        expect_error(self.token(401, **{**form, "client_secret": "wrong"}), "invalid_client")
        expect_error(self.token(401, **{**form, "client_id": "no-such-client"}), "invalid_client")
        basic = self.client.post("oauth/token", 401, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
        if not basic.headers.get("WWW-Authenticate", "").startswith("Basic "):
            raise Failure("POST /oauth/token: failed Basic authentication without a Basic challenge")
        self.client.post("oauth/token", 401, data=form)
        expect_error(self.token(400, code="c", request_valid=False), "invalid_request")
        expect_error(self.token(400, **{**form, "grant_type": "password"}, request_valid=False), "unsupported_grant_type")
        expect_error(self.token(400, grant_type="authorization_code"), "invalid_request")
        expect_error(self.token(400, **form), "invalid_grant")
        expect_error(self.token(400, **form, dpop="not-a-proof"), "invalid_dpop_proof")

    def revocation_errors(self):
        expect_error(self.revoke(400, request_valid=False), "invalid_request")
        expect_equal("revocation with an unknown token_type_hint", self.revoke(200, token="t", token_type_hint="id_token"), {})
        expect_error(self.revoke(401, token="t", client_secret="wrong"), "invalid_client")
        expect_equal("revocation of an unknown token", self.revoke(200, token="no-such-token"), {})

    def userinfo_errors(self):
        anonymous = self.checker.call(self.client.session, "GET", "userinfo", 401, request_valid=False)
        expect_equal("userinfo without a token", anonymous.json(), {})
        expect_error(self.userinfo(400, "x", scheme="Basic", request_valid=False), "invalid_request")
        expect_error(self.userinfo(401, "not.a.token"), "invalid_token")

    def client_credentials_and_introspection(self):
        """reporting-service gets a token for the API of its client grant (and is refused another); introspection."""
        granted = self.machine_token(200, audience=AUDIENCE)
        expect_equal("client_credentials scope", granted.get("scope"), M2M_SCOPE)
        for name in ("id_token", "refresh_token"):
            if name in granted:
                raise Failure(f"POST /oauth/token (client_credentials): a {name} was issued")
        expect_error(self.machine_token(400, audience="https://no-such-api.example"), "invalid_target")

        answer = self.introspect(200, granted["access_token"])
        expect_equal("introspection", (answer.get("active"), answer.get("client_id"), answer.get("sub"), answer.get("token_type")),
                     (True, M2M_CLIENT_ID, M2M_CLIENT_ID + "@clients", "Bearer"))
        expect_equal("introspection of a garbage token", self.introspect(200, "not-a-token"), {"active": False})
        # The demo client authenticates with client_secret_post: it may ask too.
        by_post = self.client.post(
            "oauth/introspect", 200, data={"token": granted["access_token"], "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).json()
        expect_equal("introspection by client_secret_post", by_post.get("active"), True)
        # Without client authentication, or with a wrong secret: 401, and nothing about the token.
        anonymous = self.client.post("oauth/introspect", 401, data={"token": granted["access_token"]}).json()
        expect_error(anonymous, "invalid_client")
        wrong = self.client.post("oauth/introspect", 401, data={"token": granted["access_token"]}, auth=(M2M_CLIENT_ID, "wrong"))
        if not wrong.headers.get("WWW-Authenticate", "").startswith("Basic "):
            raise Failure("POST /oauth/introspect: failed Basic authentication without a Basic challenge")

    def pushed_request(self):
        """PAR: the demo client pushes a request and a browser uses it, once; refused pushes and unusable request_uris."""
        secret = {"client_secret": CLIENT_SECRET}
        pushed = self.client.post("oauth/par", 201, data={**self.authorize_parameters(scope="openid", state="par"), **secret}).json()
        by_reference = "authorize?" + urlencode({"client_id": CLIENT_ID, "request_uri": pushed["request_uri"]})
        browser = Agent(self.checker)
        to_login = browser.get(by_reference, 302)
        if not to_login.headers["Location"].startswith("/login?"):
            raise Failure(f"GET /authorize (pushed request): redirected to {to_login.headers['Location']}, not to the login page")
        # The same request_uri again, or one the server never issued: an error page, never a redirect.
        never_issued = "authorize?" + urlencode({"client_id": CLIENT_ID, "request_uri": "urn:ietf:params:oauth:request_uri:no-such"})
        for url in (by_reference, never_issued):
            if "invalid_request_uri" not in browser.get(url, 400).text:
                raise Failure("GET /authorize (unusable request_uri): the error page does not name invalid_request_uri")

        unregistered = self.client.post(
            "oauth/par", 400, data={**self.authorize_parameters(scope="openid", redirect_uri="https://elsewhere.example/cb"), **secret})
        expect_error(unregistered.json(), "invalid_request")
        expect_error(self.client.post("oauth/par", 401, data={**self.authorize_parameters(scope="openid"), "client_secret": "wrong"}).json(),
                     "invalid_client")

    def form_post_and_dpop(self, browser):
        """With a session and consent: form_post delivers the code at once; a DPoP proof binds its tokens."""
        page = browser.get(self.authorize_url(scope="openid email", audience=AUDIENCE, response_mode="form_post", state="fp"), 200)
        form = page_form(page)
        expect_equal("form_post action", form.action, self.redirect)
        expect_equal("form_post fields", sorted(form.fields), ["code", "iss", "state"])
        key = DPoPKey()
        proof = key.proof("POST", self.base + "oauth/token")
        tokens = self.token(200, dpop=proof, grant_type="authorization_code", code=form.fields["code"], redirect_uri=self.redirect)
        expect_equal("DPoP token_type", tokens["token_type"], "DPoP")
        access = tokens["access_token"]
        self.userinfo(200, access, scheme="DPoP", dpop=key.proof("GET", self.base + "userinfo", access))
        expect_error(self.userinfo(401, access), "invalid_token")
        misdirected = key.proof("GET", self.base + "oauth/token", access)
        expect_error(self.userinfo(401, access, scheme="DPoP", dpop=misdirected), "invalid_dpop_proof")

    def scope_and_replay(self, browser):
        """A token without `openid` is refused at UserInfo; a second redemption of its code revokes it."""
        to_client = browser.get(self.authorize_url(scope="profile", audience=AUDIENCE, state="no-openid"), 302)
        code = query_of(to_client.headers["Location"])["code"]
        tokens = self.token(200, grant_type="authorization_code", code=code, redirect_uri=self.redirect)
        expect_error(self.userinfo(403, tokens["access_token"]), "insufficient_scope")
        expect_error(self.token(400, grant_type="authorization_code", code=code, redirect_uri=self.redirect), "invalid_grant")
        expect_error(self.userinfo(401, tokens["access_token"]), "invalid_token")

    def denied_consent(self, browser):
        to_consent = browser.get(self.authorize_url(scope="openid", prompt="consent", state="deny"), 302)
        denied = browser.submit(browser.follow(to_consent, 200), 302, button=("action", "deny"))
        to_client = browser.follow(denied, 302)
        expect_equal("denied consent", query_of(to_client.headers["Location"]).get("error"), "access_denied")
        browser.follow(to_client, 200)

    def id_token(self, browser, state):
        """An ID token of the browser's session (logging in first when it has none), from a code of the demo client."""
        response = browser.get(self.authorize_url(scope="openid", audience=AUDIENCE, state=state), 302)
        if response.headers["Location"].startswith("/login?"):
            logged_in = browser.submit(browser.follow(response, 200), 302, username=USERNAME, password=PASSWORD)
            response = browser.follow(logged_in, 302)
        location = response.headers["Location"]
        if not location.startswith(self.redirect + "?"):
            raise Failure(f"GET /authorize ({state}): redirected to {location}, not to the client")
        code = query_of(location)["code"]
        return self.token(200, grant_type="authorization_code", code=code, redirect_uri=self.redirect)["id_token"]

    def expect_logged_out(self, browser, state):
        to_client = browser.get(self.authorize_url(scope="openid", prompt="none", state=state), 302)
        expect_equal(f"authorization after logout ({state})", query_of(to_client.headers["Location"]).get("error"), "login_required")

    def logout(self, browser):
        """RP-initiated logout at /oidc/logout and /logout: refusals are pages, never redirects; without a hint the
        user confirms with a CSRF-bound form that carries the logout URL and state; a hint of the session ends it."""
        logout_url = self.redirect  # demo-app's only allowed_logout_urls entry (the tenant above)
        hint = self.id_token(browser, "hint-1")

        def session_kept(what):
            if not browser.session.cookies.get("al_session"):
                raise Failure(f"{what}: the session ended")

        refusals = {
            "not an ID token of this server": {"id_token_hint": "not-a-jwt"},
            "an unknown client": {"client_id": "no-such-client"},
            "a client_id that is not the hint's audience": {"id_token_hint": hint, "client_id": M2M_CLIENT_ID},
            "a logout URL not registered exactly": {"client_id": CLIENT_ID, "post_logout_redirect_uri": logout_url + "/"},
            "a logout URL another client did not register": {"client_id": M2M_CLIENT_ID, "post_logout_redirect_uri": logout_url},
            "a logout URL without a client": {"post_logout_redirect_uri": logout_url, "state": "x"},
        }
        for what, parameters in refusals.items():
            refused = browser.get("oidc/logout?" + urlencode(parameters), 400)
            if "Location" in refused.headers:
                raise Failure(f"GET /oidc/logout ({what}): a redirect")
            session_kept(f"GET /oidc/logout ({what})")

        # Without a hint: a confirmation (here at Auth0's path) that carries the request; nothing ends yet.
        request = {"client_id": CLIENT_ID, "post_logout_redirect_uri": logout_url, "state": "bye"}
        confirm = browser.get("logout?" + urlencode(request), 200)
        carried = page_form(confirm).fields
        expect_equal("the confirmation's hidden fields", {name: carried.get(name) for name in request}, request)
        session_kept("GET /logout without id_token_hint (it must ask first)")
        # A POST without csrf is a logout request like the GET: it asks too.
        page_form(browser.post("oidc/logout", 200, data=request))
        session_kept("POST /oidc/logout without csrf (it must ask first)")
        # A forged confirmation, or one whose logout URL was changed in the form: refused, nothing changed.
        browser.post("logout", 403, data={**request, "csrf": "forged"})
        browser.post("oidc/logout", 403, data={**request, "csrf": "forged"})
        browser.submit(confirm, 400, post_logout_redirect_uri="https://elsewhere.example/logged-out")
        session_kept("a refused confirmation")
        done = browser.submit(confirm, 302)
        location = done.headers["Location"]
        if not location.startswith(logout_url + "?"):
            raise Failure(f"POST /logout (confirmed): redirected to {location}, not to the logout URL")
        expect_equal("state after logout", query_of(location).get("state"), "bye")
        if browser.session.cookies.get("al_session"):
            raise Failure("POST /logout: the al_session cookie was not cleared")
        self.expect_logged_out(browser, "after-logout")
        # Without a session: straight back to the client, or a "Not logged in" page.
        expect_equal("logout without a session", query_of(browser.get("logout?" + urlencode(request), 302).headers["Location"]).get("state"),
                     "bye")
        browser.get("oidc/logout", 200)

        # An ID token of this very session (a new login) ends it at once, here by POST.
        hint = self.id_token(browser, "hint-2")
        ended = browser.post("oidc/logout", 302, data={"id_token_hint": hint, "post_logout_redirect_uri": logout_url, "state": "s 2"})
        location = ended.headers["Location"]
        if not location.startswith(logout_url + "?"):
            raise Failure(f"POST /oidc/logout (id_token_hint): redirected to {location}, not to the logout URL")
        expect_equal("state after logout", query_of(location).get("state"), "s 2")
        if browser.session.cookies.get("al_session"):
            raise Failure("POST /oidc/logout (id_token_hint): the al_session cookie was not cleared")
        self.expect_logged_out(browser, "after-hint-logout")

        metrics = [line for line in self.client.get("metrics", 200).text.splitlines() if line.startswith("authledger_logout_sessions_ended_total")]
        for rule in ("logout.confirmed", "logout.id_token_hint"):
            if not any(rule in line for line in metrics):
                raise Failure(f"GET /metrics: no authledger_logout_sessions_ended_total for {rule}")

    def login_throttle(self):
        """Wrong passwords until the server refuses attempts (429); last, as it throttles this address too."""
        browser = Agent(self.checker)
        page = browser.follow(browser.get(self.authorize_url(scope="openid", state="throttle"), 302), 200)
        for _ in range(12):
            page = browser.submit(page, (401, 429), username=USERNAME, password="still wrong")
            if page.status_code == 429:
                return
        raise Failure("POST /login: no 429 after 12 wrong passwords")


def tail(path, lines=15):
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:]).rstrip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="directory holding the authledger executable")
    parser.add_argument("--spec", help="the OpenAPI document (default: docs/openapi.yaml)", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "openapi.yaml"))
    args = parser.parse_args()
    executable, _ = binaries(args.bin)
    if not os.access(executable, os.X_OK):
        print(f"openapi: no authledger executable in {args.bin}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="authledger-openapi-") as workdir:
        log_path = os.path.join(workdir, "serve.log")
        # The tenant names the issuer, so the port is chosen first.
        port = free_port()
        tenant = os.path.join(workdir, "tenant.yaml")
        write_tenant(tenant, f"http://127.0.0.1:{port}/")
        server = Server(executable, os.path.join(workdir, "j"), port=port, log_path=log_path, extra_args=["--tenant", tenant])
        server.start()
        base = server.base
        checker = Checker(args.spec, base)
        try:
            server.wait_healthy(timeout=60, interval=0.1)
            Scenario(checker, base).run()
        except (Failure, ServerStartError, requests.RequestException) as failure:
            checker.problem(f"stopped: {failure}")
            checker.problem(f"server log (last lines):\n{tail(log_path)}")
        else:
            for method, path in checker.uncovered():
                checker.problem(f"{method} {path}: documented but never exercised")
        finally:
            server.stop(timeout=10)

    for problem, count in checker.problems.items():
        print(f"openapi: {problem}" + (f" ({count} times)" if count > 1 else ""))
    summary = f"{len(checker.covered & checker.operations)} operations, {checker.responses} responses validated"
    if checker.problems:
        print(f"openapi: FAILED ({len(checker.problems)} problems; {summary})")
        return 1
    print(f"openapi: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
