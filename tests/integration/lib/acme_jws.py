#!/usr/bin/python3
"""A small ACME client (RFC 8555) for tests: good requests to set things up, and bad ones
to see how a CA refuses them. Keys and JWKs through josepy and cryptography (Debian's
python3-josepy, python3-cryptography); HTTPS through http.client, loopback only.

    acme_jws.py STATE init DIRECTORY_URL CA_BUNDLE
    acme_jws.py STATE account NAME [EAB_KID EAB_KEY]   newAccount (P-256 key); prints the answer
    acme_jws.py STATE deactivate NAME                  the account deactivates itself
    acme_jws.py STATE order NAME ACCOUNT IDENT...      newOrder; prints "TXT_NAME VALUE" per
                                                       dns-01 challenge to publish
    acme_jws.py STATE respond NAME                     answers those challenges, waits for ready
    acme_jws.py STATE status NAME                      the order's status
    acme_jws.py STATE case CASE ACCOUNT [ORDER]        one bad request (CASES below)
    acme_jws.py STATE post ACCOUNT URL PAYLOAD         a request signed by ACCOUNT's key with
                                                       its kid; URL is a directory field
                                                       (newOrder, keyChange, ...), "acct" (the
                                                       account URL), "orders" (its orders
                                                       list) or a URL; PAYLOAD is JSON text, or
                                                       "get" for POST-as-GET
    acme_jws.py STATE lookup ACCOUNT                   newAccount {"onlyReturnExisting": true}
                                                       signed with ACCOUNT's key as a jwk
    acme_jws.py STATE keychange ACCOUNT [HOW]          keyChange (RFC 8555 7.3.5) to a fresh
                                                       key; HOW (KEYCHANGES below) spoils it
    acme_jws.py STATE orders ACCOUNT N SUFFIX PREFIX   N newOrders, for PREFIX-1.SUFFIX ...
                                                       PREFIX-N.SUFFIX; prints their URLs

STATE is a JSON file this script keeps (account keys, URLs). `account` and `case` print
one line "STATUS TYPE NONCE CONTENT_TYPE": TYPE is the problem type without the
urn:ietf:params:acme:error: prefix ("-" when none), NONCE is "nonce" when the answer
carries a Replay-Nonce, else "no-nonce". Exit status 0 when the exchange happened (whatever
the CA answered), 2 on a usage error, 3 when a setup step failed.

`post`, `lookup` and `keychange` print four lines: that line, the Location header ("-" when
none), the URL of the Link rel="next" ("-" when none), and the body as compact JSON with
sorted keys ("-" when it is not JSON).

KEYCHANGES: "new" (a good request; on 200 ACCOUNT's key becomes the new one and the old key
stays usable as account "ACCOUNT.old" with the same kid), "wrong-url" (the inner url is
newOrder's), "wrong-oldkey" (oldKey is another key), "wrong-account" (account is another
account URL of this CA), "inner-nonce" (the inner JWS has a nonce), "inner-kid" (the inner
JWS has a kid, not a jwk), "inner-bad-signature" (the inner JWS is signed by a key other
than its jwk), "taken=OTHER" (the new key is account OTHER's key).
"""
import base64
import hashlib
import http.client
import json
import os
import re
import ssl
import sys
import time
import urllib.parse

import josepy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

PROBLEM = "urn:ietf:params:acme:error:"
TIMEOUT = 10
OVERSIZED = 70 * 1024  # past the CA's 64 KiB bound on a JWS


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Setup(Exception):
    pass


class Answer:
    def __init__(self, status, headers, body, raw_headers=()):
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_headers = list(raw_headers)  # every (name, value), repeated ones too

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def line(self):
        ctype = (self.header("Content-Type") or "-").split(";")[0].strip()
        ptype = "-"
        doc = self.json() if ctype == "application/problem+json" else None
        if isinstance(doc, dict) and isinstance(doc.get("type"), str):
            t = doc["type"]
            ptype = t[len(PROBLEM):] if t.startswith(PROBLEM) else t
        nonce = "nonce" if self.header("Replay-Nonce") else "no-nonce"
        return "%d %s %s %s" % (self.status, ptype, nonce, ctype)

    def link(self, rel):
        """The URL of the first Link with this rel (RFC 8288), or None."""
        for k, v in self.raw_headers:
            if k.lower() != "link":
                continue
            for m in re.finditer(r'<([^>]*)>((?:\s*;\s*[^;,]+)*)', v):
                params = [x.strip() for x in m.group(2).split(";") if x.strip()]
                if ('rel="%s"' % rel) in params or ("rel=" + rel) in params:
                    return m.group(1)
        return None

    def show(self):
        doc = self.json()
        body = "-" if doc is None else json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return "\n".join([self.line(), self.header("Location") or "-",
                          self.link("next") or "-", body])


class Client:
    def __init__(self, state_path):
        self.path = state_path
        with open(state_path) as f:
            self.state = json.load(f)
        self.ctx = ssl.create_default_context(cafile=self.state["ca"])
        self._dir = None

    def save(self):
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, self.path)

    # ---- transport ----
    def request(self, method, url, body=None, ctype="application/jose+json"):
        u = urllib.parse.urlsplit(url)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise Setup("refusing a non-loopback URL: " + url)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=self.ctx,
                                           timeout=TIMEOUT)
        headers = {}
        if body is not None:
            headers["Content-Type"] = ctype
        try:
            path = u.path + ("?" + u.query if u.query else "")
            try:
                conn.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
                pass  # the server may answer (413) and close before reading a body
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            return Answer(r.status, hdrs, data, r.getheaders())
        finally:
            conn.close()

    def directory(self):
        if self._dir is None:
            a = self.request("GET", self.state["dir"])
            if a.status != 200 or not isinstance(a.json(), dict):
                raise Setup("the directory answered %d" % a.status)
            self._dir = a.json()
        return self._dir

    def nonce(self):
        a = self.request("HEAD", self.directory()["newNonce"])
        n = a.header("Replay-Nonce")
        if not n:
            raise Setup("newNonce gave no nonce (status %d)" % a.status)
        return n

    # ---- keys and JWS ----
    @staticmethod
    def new_key():
        return ec.generate_private_key(ec.SECP256R1())

    def key_of(self, account):
        acct = self.state["accounts"].get(account)
        if not acct:
            raise Setup("no account named " + account)
        return serialization.load_pem_private_key(acct["key"].encode(), None)

    @staticmethod
    def jwk(key):
        return josepy.JWKEC(key=key.public_key()).to_partial_json()

    @staticmethod
    def sign(key, protected, payload):
        """A flattened JWS (ES256) as a dict; payload None is POST-as-GET."""
        p64 = b64u(json.dumps(protected))
        pl64 = "" if payload is None else b64u(json.dumps(payload))
        der = key.sign((p64 + "." + pl64).encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return {"protected": p64, "payload": pl64, "signature": b64u(sig)}

    def jws(self, account, url, payload, nonce=None, kid=None, key=None, use_jwk=False,
            proto_url=None):
        key = key or self.key_of(account)
        prot = {"alg": "ES256", "nonce": nonce or self.nonce(), "url": proto_url or url}
        if use_jwk:
            prot["jwk"] = self.jwk(key)
        else:
            prot["kid"] = kid or self.state["accounts"][account]["kid"]
        return self.sign(key, prot, payload)

    def post(self, account, url, payload, **kw):
        ctype = kw.pop("ctype", "application/jose+json")
        body = json.dumps(self.jws(account, url, payload, **kw)).encode()
        return self.request("POST", url, body, ctype)

    # ---- good requests ----
    def account(self, name, eab_kid=None, eab_key=None):
        key = self.new_key()
        url = self.directory()["newAccount"]
        payload = {"termsOfServiceAgreed": True, "contact": ["mailto:%s@example.org" % name]}
        if eab_kid:
            prot = {"alg": "HS256", "kid": eab_kid, "url": url}
            p64 = b64u(json.dumps(prot))
            pl64 = b64u(json.dumps(self.jwk(key)))
            mac = hmac.HMAC(base64.urlsafe_b64decode(eab_key + "=" * (-len(eab_key) % 4)),
                            hashes.SHA256())
            mac.update((p64 + "." + pl64).encode())
            payload["externalAccountBinding"] = {"protected": p64, "payload": pl64,
                                                 "signature": b64u(mac.finalize())}
        body = json.dumps(self.jws(None, url, payload, key=key, use_jwk=True)).encode()
        a = self.request("POST", url, body)
        if a.status in (200, 201) and a.header("Location"):
            pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
            self.state["accounts"][name] = {"key": pem, "kid": a.header("Location")}
            self.save()
        return a

    def deactivate(self, name):
        kid = self.state["accounts"][name]["kid"]
        a = self.post(name, kid, {"status": "deactivated"})
        if a.status != 200 or (a.json() or {}).get("status") != "deactivated":
            raise Setup("deactivation answered %d: %s" % (a.status, a.body[:200]))

    def order(self, name, account, idents):
        ids = [{"type": "dns", "value": v} for v in idents]
        a = self.post(account, self.directory()["newOrder"], {"identifiers": ids})
        o = a.json()
        if a.status != 201 or not isinstance(o, dict) or not a.header("Location"):
            raise Setup("newOrder answered %d: %s" % (a.status, a.body[:300]))
        rec = {"account": account, "url": a.header("Location"), "finalize": o["finalize"],
               "idents": idents, "challenges": []}
        thumb = b64u(josepy.JWKEC(key=self.key_of(account).public_key()).thumbprint())
        for az in o["authorizations"]:
            z = self.post(account, az, None).json()
            if z.get("status") == "valid":
                continue
            ch = [c for c in z["challenges"] if c["type"] == "dns-01"][0]
            txt = b64u(hashlib.sha256((ch["token"] + "." + thumb).encode()).digest())
            rec["challenges"].append({"url": ch["url"], "txt_name": "_acme-challenge." +
                                      z["identifier"]["value"], "txt": txt})
        self.state["orders"][name] = rec
        self.save()
        for c in rec["challenges"]:
            print(c["txt_name"], c["txt"])

    def respond(self, name):
        rec = self.state["orders"][name]
        for c in rec["challenges"]:
            a = self.post(rec["account"], c["url"], {})
            if a.status != 200:
                raise Setup("challenge answered %d: %s" % (a.status, a.body[:300]))
        for _ in range(100):
            st = self.status(name)
            if st != "pending":
                break
            time.sleep(0.2)
        if st != "ready":
            raise Setup("the order is %s, not ready" % st)

    def status(self, name):
        rec = self.state["orders"][name]
        return (self.post(rec["account"], rec["url"], None).json() or {}).get("status")

    def pem(self, key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    # ---- account management (RFC 8555 7.3) ----
    def resolve(self, account, url):
        d = self.directory()
        kid = self.state["accounts"][account]["kid"]
        if url == "acct":
            return kid
        if url == "orders":
            return kid + "/orders"
        if isinstance(d.get(url), str):
            return d[url]
        return url

    def post_any(self, account, url, payload):
        url = self.resolve(account, url)
        return self.post(account, url, None if payload == "get" else json.loads(payload))

    def lookup(self, account):
        url = self.directory()["newAccount"]
        body = json.dumps(self.jws(None, url, {"onlyReturnExisting": True},
                                   key=self.key_of(account), use_jwk=True)).encode()
        return self.request("POST", url, body)

    def key_change(self, name, how="new"):
        acct = self.state["accounts"][name]
        url = self.directory()["keyChange"]
        old = self.key_of(name)
        new = self.new_key()
        if how.startswith("taken="):
            new = self.key_of(how[len("taken="):])
        inner_prot = {"alg": "ES256", "jwk": self.jwk(new), "url": url}
        inner_payload = {"account": acct["kid"], "oldKey": self.jwk(old)}
        signer = new
        if how == "wrong-url":
            inner_prot["url"] = self.directory()["newOrder"]
        elif how == "wrong-oldkey":
            inner_payload["oldKey"] = self.jwk(self.new_key())
        elif how == "wrong-account":
            inner_payload["account"] = acct["kid"].rsplit("/", 1)[0] + "/" + \
                b64u(os.urandom(16))
        elif how == "inner-nonce":
            inner_prot["nonce"] = self.nonce()
        elif how == "inner-kid":
            del inner_prot["jwk"]
            inner_prot["kid"] = acct["kid"]
        elif how == "inner-bad-signature":
            signer = self.new_key()
        elif how != "new" and not how.startswith("taken="):
            raise Setup("unknown keychange " + how)
        inner = self.sign(signer, inner_prot, inner_payload)
        a = self.post(name, url, inner)
        if how == "new" and a.status == 200:
            self.state["accounts"][name + ".old"] = {"key": acct["key"], "kid": acct["kid"]}
            acct["key"] = self.pem(new)
            self.save()
        return a

    def orders(self, account, n, suffix, prefix):
        url = self.directory()["newOrder"]
        nonce = None
        for i in range(1, n + 1):
            ident = "%s-%d.%s" % (prefix, i, suffix)
            a = self.post(account, url, {"identifiers": [{"type": "dns", "value": ident}]},
                          nonce=nonce)
            if a.status != 201 or not a.header("Location"):
                raise Setup("newOrder %d answered %d: %s" % (i, a.status, a.body[:300]))
            nonce = a.header("Replay-Nonce")  # saves a newNonce round trip
            print(a.header("Location"))

    # ---- bad requests ----
    def csr(self, names):
        key = self.new_key()
        b = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False)
        der = b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        return b64u(der)

    def case(self, case, account, order=None):
        d = self.directory()
        new_order = d["newOrder"]
        good = {"identifiers": [{"type": "dns", "value": "bad-input.example.org"}]}
        if order:
            rec = self.state["orders"][order]
            good = {"identifiers": [{"type": "dns", "value": v} for v in rec["idents"]]}

        def raw(body, url=new_order, ctype="application/jose+json"):
            return self.request("POST", url, body, ctype)

        if case == "not-json":
            return raw(b"this is not JSON {")
        if case == "not-object":
            return raw(b"[1, 2, 3]")
        if case == "no-signature":
            j = self.jws(account, new_order, good)
            del j["signature"]
            return raw(json.dumps(j).encode())
        if case == "bad-base64":
            j = self.jws(account, new_order, good)
            j["protected"] = "!!" + j["protected"][2:]
            return raw(json.dumps(j).encode())
        if case == "bad-signature":
            j = self.jws(account, new_order, good)
            j["signature"] = b64u(os.urandom(64))
            return raw(json.dumps(j).encode())
        if case == "alg-none":
            prot = {"alg": "none", "nonce": self.nonce(), "url": new_order,
                    "kid": self.state["accounts"][account]["kid"]}
            j = {"protected": b64u(json.dumps(prot)), "payload": b64u(json.dumps(good)),
                 "signature": ""}
            return raw(json.dumps(j).encode())
        if case == "used-nonce":
            n = self.nonce()
            first = self.post(account, self.state["accounts"][account]["kid"], None, nonce=n)
            if first.status != 200:
                raise Setup("the first use of the nonce answered %d" % first.status)
            return self.post(account, new_order, good, nonce=n)
        if case == "unknown-nonce":
            return self.post(account, new_order, good, nonce=b64u(os.urandom(24)))
        if case == "wrong-url":
            return self.post(account, new_order, good, proto_url=d["newAuthz"])
        if case == "unknown-kid":
            kid = self.state["accounts"][account]["kid"].rsplit("/", 1)[0] + "/" + \
                b64u(os.urandom(16))
            return self.post(account, new_order, good, kid=kid)
        if case == "foreign-kid":  # a URL of another server as kid
            return self.post(account, new_order, good, kid="https://example.org/acct/1")
        if case == "jwk-not-kid":  # newOrder signed with a jwk
            return self.post(account, new_order, good, use_jwk=True)
        if case == "deactivated":
            return self.post(account, new_order, good)
        if case == "oversized":
            big = dict(good, padding="A" * OVERSIZED)
            return self.post(account, new_order, big)
        if case == "content-type":
            return self.post(account, new_order, good, ctype="application/json")
        if case in ("csr-outside", "csr-extra", "csr-missing"):
            rec = self.state["orders"][order]
            names = list(rec["idents"])
            outside = "outside-" + names[0].lstrip("*.")
            if case == "csr-outside":
                names = [outside]
            elif case == "csr-extra":
                names.append(outside)
            else:
                names = names[:-1] or ["other." + names[0]]
            return self.post(account, rec["finalize"], {"csr": self.csr(names)})
        if case == "order-outside":  # a name outside the CA's domains
            return self.post(account, new_order, {"identifiers": [
                {"type": "dns", "value": "not-ours.example.net"}]})
        if case == "foreign-order":  # ACCOUNT reads another account's order
            return self.post(account, self.state["orders"][order]["url"], None)
        if case == "foreign-finalize":  # ACCOUNT finalizes another account's order
            rec = self.state["orders"][order]
            return self.post(account, rec["finalize"], {"csr": self.csr(rec["idents"])})
        if case == "get-post":
            rec = self.state["orders"][order]
            return self.request("GET", rec["url"])
        if case == "new-account-no-eab":
            key = self.new_key()
            url = d["newAccount"]
            return self.request("POST", url, json.dumps(self.jws(
                None, url, {"termsOfServiceAgreed": True}, key=key, use_jwk=True)).encode())
        raise Setup("unknown case " + case)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    state, cmd, args = argv[1], argv[2], argv[3:]
    try:
        if cmd == "init" and len(args) == 2:
            with open(state, "w") as f:
                json.dump({"dir": args[0], "ca": args[1], "accounts": {}, "orders": {}}, f)
            return 0
        c = Client(state)
        if cmd == "account" and len(args) in (1, 3):
            print(c.account(*args).line())
        elif cmd == "deactivate" and len(args) == 1:
            c.deactivate(args[0])
        elif cmd == "order" and len(args) >= 3:
            c.order(args[0], args[1], args[2:])
        elif cmd == "respond" and len(args) == 1:
            c.respond(args[0])
        elif cmd == "status" and len(args) == 1:
            print(c.status(args[0]))
        elif cmd == "case" and len(args) in (2, 3):
            print(c.case(*args).line())
        elif cmd == "post" and len(args) == 3:
            print(c.post_any(*args).show())
        elif cmd == "lookup" and len(args) == 1:
            print(c.lookup(args[0]).show())
        elif cmd == "keychange" and len(args) in (1, 2):
            print(c.key_change(*args).show())
        elif cmd == "orders" and len(args) == 4 and args[1].isdigit() and \
                0 < int(args[1]) <= 200:
            c.orders(args[0], int(args[1]), args[2], args[3])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (Setup, OSError, KeyError, ValueError, http.client.HTTPException) as exc:
        print("acme_jws.py %s: %s: %s" % (cmd, type(exc).__name__, exc), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
