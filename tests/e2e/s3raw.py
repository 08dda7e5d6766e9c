"""Raw S3 protocol helpers: an independent SigV4 signer (header auth, presigned URLs,
aws-chunked streaming signatures) and a byte-exact HTTP sender built on http.client.

The signer is deliberately written from the SigV4 spec rather than reusing botocore, so that
tests can produce requests botocore refuses to make (wrong region/service, corrupted chunk
signatures, truncated bodies...). Positive-control tests in test_bad_input.py prove it signs
correctly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import socket
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from harness import ADMIN, REGION, Creds

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def amz_now(offset_secs: float = 0) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_secs)
    return t.strftime("%Y%m%dT%H%M%SZ")


def uri_encode(s: str, keep_slash: bool = False) -> str:
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def key_path(bucket: str, key: str | None = None) -> str:
    """Path-style request path, percent-encoded the way the SDKs do it."""
    p = "/" + uri_encode(bucket)
    if key is not None:
        p += "/" + uri_encode(key, keep_slash=True)
    return p


def canonical_query(query: list[tuple[str, str]]) -> str:
    enc = sorted((uri_encode(k), uri_encode(v)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in enc)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


@dataclass
class Signed:
    headers: dict
    signature: str
    amz_date: str
    scope: str
    key: bytes


def sign_headers(method: str, path: str, query: list[tuple[str, str]], headers: dict, payload_hash: str, *,
                 creds: Creds = ADMIN, region: str = REGION, service: str = "s3",
                 amz_date: str | None = None) -> Signed:
    """SigV4 header auth. `path` is the exact (already percent-encoded) path sent on the wire.
    `headers` must include Host. Returns new headers including Authorization."""
    amz_date = amz_date or amz_now()
    date = amz_date[:8]
    hdrs = dict(headers)
    hdrs["x-amz-date"] = amz_date
    hdrs["x-amz-content-sha256"] = payload_hash
    lower = {k.lower().strip(): " ".join(str(v).strip().split()) for k, v in hdrs.items()}
    signed_names = sorted(lower)
    canonical_headers = "".join(f"{n}:{lower[n]}\n" for n in signed_names)
    signed_headers = ";".join(signed_names)
    creq = "\n".join([method, path, canonical_query(query), canonical_headers, signed_headers, payload_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(creds.secret_key, date, region, service)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    hdrs["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders={signed_headers}, Signature={sig}"
    )
    return Signed(hdrs, sig, amz_date, scope, key)


def presign(host: str, method: str, path: str, *, creds: Creds = ADMIN, expires: int = 300,
            amz_date: str | None = None, region: str = REGION, service: str = "s3",
            extra_query: list[tuple[str, str]] = ()) -> str:
    """A SigV4 presigned URL (query auth, UNSIGNED-PAYLOAD, only `host` signed)."""
    amz_date = amz_date or amz_now()
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    query = list(extra_query) + [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{creds.access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    cq = canonical_query(query)
    creq = "\n".join([method, path, cq, f"host:{host}\n", "host", UNSIGNED])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(creds.secret_key, date, region, service), sts.encode(), hashlib.sha256).hexdigest()
    return f"http://{host}{path}?{cq}&X-Amz-Signature={sig}"


# ---------------------------------------------------------------------------
# responses
# ---------------------------------------------------------------------------

def strip_ns(tag: str) -> str:
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def xml_root(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def xml_find_all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if strip_ns(e.tag) == name]


def xml_text(root: ET.Element, name: str) -> str | None:
    for e in root.iter():
        if strip_ns(e.tag) == name:
            return e.text or ""
    return None


@dataclass
class Resp:
    status: int
    headers: dict = field(default_factory=dict)  # lower-cased names
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def error(self) -> dict:
        """Parse an S3 XML error body into {Code, Message, RequestId, ...}."""
        root = xml_root(self.body)
        assert strip_ns(root.tag) == "Error", f"error body root is <{root.tag}>: {self.body[:500]!r}"
        return {strip_ns(c.tag): (c.text or "") for c in root}

    def __repr__(self) -> str:
        return f"Resp(status={self.status}, headers={self.headers}, body={self.body[:600]!r})"


def assert_s3_error(resp: Resp, status, codes) -> dict:
    """Assert `resp` is an S3 error: status (int or collection), <Error><Code> in `codes`, a
    <RequestId> and an x-amz-request-id header."""
    statuses = {status} if isinstance(status, int) else set(status)
    codes = {codes} if isinstance(codes, str) else set(codes)
    assert resp.status in statuses, f"expected HTTP {sorted(statuses)}, got {resp!r}"
    try:
        err = resp.error()
    except ET.ParseError as e:
        raise AssertionError(f"error response is not XML ({e}): {resp!r}")
    assert err.get("Code") in codes, f"expected <Code> in {sorted(codes)}, got {err.get('Code')!r}: {resp!r}"
    assert err.get("RequestId"), f"error body lacks <RequestId>: {resp!r}"
    assert resp.header("x-amz-request-id"), f"error response lacks x-amz-request-id header: {resp!r}"
    return err


# ---------------------------------------------------------------------------
# sending
# ---------------------------------------------------------------------------

def send(hostport: str, method: str, path: str, query: list[tuple[str, str]] = (), headers: dict | None = None,
         body: bytes = b"", timeout: float = 60) -> Resp:
    host, port = hostport.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        url = path + ("?" + canonical_query(list(query)) if query else "")
        hdrs = dict(headers or {})
        if method in ("PUT", "POST") and not any(k.lower() == "content-length" for k in hdrs) \
                and not any(k.lower() == "transfer-encoding" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        conn.request(method, url, body=body if body else None, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def request(server_or_hostport, method: str, path: str, query: list[tuple[str, str]] = (),
            headers: dict | None = None, body: bytes = b"", *, creds: Creds = ADMIN, region: str = REGION,
            service: str = "s3", payload_hash: str | None = None, amz_date: str | None = None,
            host_header: str | None = None, timeout: float = 60) -> Resp:
    """Sign (SigV4, header auth) and send one request."""
    hostport = getattr(server_or_hostport, "hostport", server_or_hostport)
    hdrs = {"Host": host_header or hostport}
    hdrs.update(headers or {})
    ph = payload_hash if payload_hash is not None else hashlib.sha256(body).hexdigest()
    s = sign_headers(method, path, list(query), hdrs, ph, creds=creds, region=region, service=service,
                     amz_date=amz_date)
    return send(hostport, method, path, query, s.headers, body, timeout=timeout)


def anonymous(server_or_hostport, method: str, path: str, query=(), headers=None, body=b"") -> Resp:
    hostport = getattr(server_or_hostport, "hostport", server_or_hostport)
    hdrs = {"Host": hostport}
    hdrs.update(headers or {})
    return send(hostport, method, path, query, hdrs, body)


def get_url(url: str, timeout: float = 30) -> Resp:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path + ("?" + u.query if u.query else ""))
        r = conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# aws-chunked bodies
# ---------------------------------------------------------------------------

def chunked_signed_put(server, bucket: str, key: str, data: bytes, *, chunk_size: int = 64 * 1024,
                       corrupt_chunk: int | None = None, trailer_checksum: tuple[str, str] | None = None,
                       corrupt_trailer_signature: bool = False, creds: Creds = ADMIN) -> Resp:
    """PUT with `x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.

    corrupt_chunk: index of the chunk whose chunk-signature is replaced with a wrong (but
    well-formed) one. trailer_checksum: (header name, value) sent as a signed trailer.
    """
    path = key_path(bucket, key)
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    mode = STREAMING_TRAILER if trailer_checksum else STREAMING

    # The encoded length must be known before signing (Content-Length is signed).
    def frame_len(n: int) -> int:
        return len(f"{n:x};chunk-signature=".encode()) + 64 + 2 + n + 2

    total = sum(frame_len(len(c)) for c in chunks)
    trailer_block = b""
    if trailer_checksum:
        name, value = trailer_checksum
        total -= 2  # the final 0-size chunk is followed by trailers instead of CRLF
        trailer_block = f"{name}:{value}\r\n".encode()
        total += len(trailer_block) + len("x-amz-trailer-signature:") + 64 + 2 + 2
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "Content-Length": str(total),
    }
    if trailer_checksum:
        headers["x-amz-trailer"] = trailer_checksum[0]
    s = sign_headers("PUT", path, [], {"Host": server.hostport, **headers}, mode, creds=creds)

    out = bytearray()
    prev = s.signature
    for i, c in enumerate(chunks):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", s.amz_date, s.scope, prev, EMPTY_SHA256,
                         hashlib.sha256(c).hexdigest()])
        sig = hmac.new(s.key, sts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        if corrupt_chunk is not None and i == corrupt_chunk:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out += f"{len(c):x};chunk-signature={sig}\r\n".encode()
        if c:
            out += c + b"\r\n"
    if trailer_checksum:
        name, value = trailer_checksum
        canon = f"{name}:{value}\n"
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", s.amz_date, s.scope, prev,
                         hashlib.sha256(canon.encode()).hexdigest()])
        tsig = hmac.new(s.key, sts.encode(), hashlib.sha256).hexdigest()
        if corrupt_trailer_signature:
            tsig = ("0" if tsig[0] != "0" else "1") + tsig[1:]
        out += trailer_block + f"x-amz-trailer-signature:{tsig}\r\n".encode() + b"\r\n"
    else:
        out += b"\r\n"
    assert len(out) == total, (len(out), total)
    return send(server.hostport, "PUT", path, [], s.headers, bytes(out))


def truncated_put(server, path: str, full_body: bytes, send_bytes: int, creds: Creds = ADMIN) -> None:
    """Send a correctly signed PUT announcing len(full_body) bytes, write only `send_bytes` of them,
    then close the socket."""
    s = sign_headers("PUT", path, [], {"Host": server.hostport, "Content-Length": str(len(full_body))},
                     hashlib.sha256(full_body).hexdigest(), creds=creds)
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in s.headers.items()) + "\r\n"
    host, port = server.hostport.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(head.encode() + full_body[:send_bytes])
    finally:
        sock.close()
