"""The server's own pages, driven as a browser would: what the interop scripts share.

A client library takes the browser to /authorize and gets it back at its redirect URI; in between, the
server's login and consent pages are filled in here (hidden fields read from the HTML)."""

import re
from urllib.parse import urljoin


def hidden(page, name):
    """The value of the hidden input `name` on `page` (HTML-unescaped as the pages escape it)."""
    match = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    if not match:
        raise SystemExit("no hidden field %s on page" % name)
    return match.group(1).replace("&amp;", "&")


def follow_to(browser, base, response, redirect_prefix, username, password):
    """Follows the server's redirects from `response` through its login and consent pages (logging in and
    accepting) until one leaves for `redirect_prefix`; returns that Location."""
    for _ in range(8):
        if response.status_code != 302:
            raise SystemExit("unexpected status %d: %s" % (response.status_code, response.text[:300]))
        location = response.headers["Location"]
        if location.startswith(redirect_prefix):
            return location
        target = urljoin(base, location)
        if location.startswith("/login"):
            page = browser.get(target).text
            response = browser.post(urljoin(base, "login"), data={
                "state": hidden(page, "state"), "csrf": hidden(page, "csrf"),
                "username": username, "password": password}, allow_redirects=False)
        elif location.startswith("/consent"):
            page = browser.get(target).text
            response = browser.post(urljoin(base, "consent"), data={
                "state": hidden(page, "state"), "csrf": hidden(page, "csrf"), "action": "accept"},
                allow_redirects=False)
        else:
            response = browser.get(target, allow_redirects=False)
    raise SystemExit("the authorization did not come back to %s" % redirect_prefix)
