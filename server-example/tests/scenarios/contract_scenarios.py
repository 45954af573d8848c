"""Black-box contract scenarios for licentia-server, written from the v1 contract and DESIGN.md.

Usage: contract_scenarios.py BASE_URL ADMIN_TOKEN

Exercises every management and runtime path of `openapi-v1-core.yaml` with its documented
success status and response schema, the signed runtime envelope (DESIGN 4.1, Ed25519 over the
compact JSON of `data`), the offline envelope (DESIGN 4.2: HKDF-SHA256 + AES-256-GCM; decrypted
when the `cryptography` package is present, which `scripts/python-env` installs), idempotency,
and every reachable documented error status. Failures are collected, not fatal: the script
prints each one and exits 1, or prints `scenarios: OK`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import threading
import http.client
import json
import re
import sys
import time
import traceback
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

try:  # DESIGN 4.2 decryption; installed by scripts/python-env.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    HAVE_AESGCM = True
except ImportError:  # pragma: no cover
    HAVE_AESGCM = False

FAILURES: list[str] = []
CHECKS = 0
CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
SIGNED_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def check(cond: bool, msg: str) -> bool:
    global CHECKS
    CHECKS += 1
    if not cond:
        FAILURES.append(msg)
    return cond


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


NOW = datetime.now(timezone.utc).replace(microsecond=0)


# --------------------------------------------------------------------------------------------
# HTTP


class Resp:
    def __init__(self, status: int, headers: dict[str, str], raw: bytes, label: str):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.label = label
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    @property
    def data(self):
        return (self.json or {}).get("data") if isinstance(self.json, dict) else None

    def __repr__(self) -> str:
        return f"{self.label} -> {self.status} {self.raw[:400]!r}"


class Client:
    def __init__(self, base_url: str):
        u = urllib.parse.urlparse(base_url)
        self.host = u.hostname
        self.port = u.port or 80

    def call(self, method, path, body=None, *, bearer=None, license_key=None, auth=None,
             idem=None, headers=None, raw=None, query=None) -> Resp:
        h = {"Accept": "application/json"}
        if bearer is not None:
            h["Authorization"] = f"Bearer {bearer}"
        if license_key is not None:
            h["Authorization"] = f"License {license_key}"
        if auth is not None:
            h["Authorization"] = auth
        if idem is not None:
            h["Idempotency-Key"] = idem
        payload = None
        if raw is not None:
            payload = raw
            h["Content-Type"] = "application/json"
        elif body is not None:
            payload = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        if query:
            path = path + "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=payload, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            return Resp(r.status, hdrs, data, f"{method} {path}")
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------
# schema checks

S, I, B, O, A, DT = "string", "integer", "boolean", "object", "array", "date-time"

LICENSE_TYPES = ["perpetual", "time_limited", "subscription", "trial", "consumption"]
LICENSE_STATUS = ["active", "suspended", "expired", "revoked", "grace_period"]
SCOPES = ["admin", "product:read", "product:write", "license:read", "license:write",
          "device:write", "event:read", "webhook:write", "report:read", "report:export",
          "ops:read"]

SCHEMAS = {
    "Product": ({"id": S, "name": S, "code": S, "metadata": O, "created_at": DT, "updated_at": DT}, {}),
    "Policy": ({"id": S, "product_id": S, "name": S, "code": S, "license_type": LICENSE_TYPES,
                "max_activations": I, "floating_timeout_minutes": I, "grace_period_days": I,
                "validation_interval_minutes": I, "require_heartbeat": B,
                "allow_offline_activation": B, "offline_grace_days": I, "allow_vm": B,
                "allow_container": B, "max_transfers": I, "metadata": O, "created_at": DT,
                "updated_at": DT},
               {"max_floating_users": I, "max_container_instances": I}),
    "Feature": ({"id": S, "product_id": S, "code": S, "name": S, "metadata": O, "created_at": DT}, {}),
    "Customer": ({"id": S, "name": S, "code": S, "metadata": O, "created_at": DT, "updated_at": DT},
                 {"email": S}),
    "APIKey": ({"id": S, "name": S, "key_prefix": S, "scopes": A, "allowed_cidrs": A,
                "is_active": B, "created_at": DT}, {"expires_at": DT, "last_used_at": DT}),
    "ProductVersion": ({"id": S, "product_id": S, "version": S, "released_at": DT, "metadata": O,
                        "created_at": DT, "updated_at": DT}, {}),
    "Subscription": ({"id": S, "product_id": S, "external_system": S, "external_id": S,
                      "status": ["trialing", "active", "past_due", "paused", "canceled"],
                      "current_period_start": DT, "current_period_end": DT,
                      "cancel_at_period_end": B, "metadata": O, "created_at": DT, "updated_at": DT},
                     {"customer_id": S, "canceled_at": DT}),
    "Order": ({"id": S, "product_id": S, "external_system": S, "external_id": S,
               "status": ["pending", "paid", "fulfilled", "canceled", "refunded"], "metadata": O,
               "created_at": DT, "updated_at": DT},
              {"customer_id": S, "subscription_id": S, "period_start": DT, "period_end": DT}),
    "CustomFieldDefinition": ({"id": S, "product_id": S, "resource_type": ["license", "customer"],
                               "code": S, "name": S,
                               "value_type": ["string", "integer", "boolean", "datetime", "enum"],
                               "is_required": B, "enum_options": A, "metadata": O,
                               "created_at": DT, "updated_at": DT}, {}),
    "CustomFieldValue": ({"definition_id": S, "product_id": S, "resource_type": ["license", "customer"],
                          "resource_id": S, "code": S, "name": S,
                          "value_type": ["string", "integer", "boolean", "datetime", "enum"],
                          "is_required": B, "enum_options": A, "metadata": O, "updated_at": DT},
                         {"string_value": S, "integer_value": I, "boolean_value": B,
                          "datetime_value": DT, "enum_value": S}),
    "License": ({"id": S, "product_id": S, "policy_id": S, "status": LICENSE_STATUS,
                 "license_key_prefix": S, "license_key_last4": S, "active_device_count": I,
                 "times_activated": I, "times_transferred": I, "total_consumptions": I,
                 "entitlement_version": I, "metadata": O, "created_at": DT, "updated_at": DT},
                {"customer_id": S, "order_id": S, "subscription_id": S, "customer_email": S,
                 "customer_name": S, "starts_at": DT, "expires_at": DT,
                 "maintenance_expires_at": DT}),
    "LicenseFeature": ({"license_id": S, "feature_id": S, "feature_code": S, "feature_name": S,
                        "enabled": B, "total_consumptions": I, "metadata": O},
                       {"max_consumptions": I, "remaining": I, "expires_at": DT}),
    "Device": ({"id": S, "license_id": S, "binding_kind": ["hardware", "container"],
                "binding_key": S, "is_vm": B, "is_container": B,
                "status": ["active", "deactivated", "blacklisted", "reset", "expired"],
                "first_seen_at": DT, "last_seen_at": DT, "metadata": O, "created_at": DT,
                "updated_at": DT},
               {"fingerprint": S, "hostname": S, "os": S, "ip_address": S, "container_id": S,
                "cluster_id": S, "namespace": S, "pod_name": S, "last_validated_at": DT}),
    "Event": ({"sequence": I, "event_type": S,
               "actor_type": ["api_key", "license", "oidc_subject", "system"], "actor_id": S,
               "resource_type": S, "metadata": O, "created_at": DT},
              {"resource_id": S, "ip_address": S}),
    "WebhookEndpoint": ({"id": S, "name": S, "url": S, "secret_prefix": S, "event_types": A,
                         "is_active": B, "created_at": DT, "updated_at": DT},
                        {"last_delivery_at": DT}),
    "PublicKey": ({"kid": S, "algorithm": S, "public_key": S, "status": ["active", "retired"],
                   "created_at": DT}, {}),
    "FeatureEntitlement": ({"code": S, "enabled": B}, {"quota": I, "consumed": I, "remaining": I}),
    "VersionEligibility": ({"app_version": S, "is_entitled": B, "enforced": B},
                           {"released_at": DT, "eligible_through": DT}),
    "RuntimeEntitlementResponseData": ({"license_id": S, "status": S, "license_type": LICENSE_TYPES,
                                        "entitlement_version": I, "issued_at": DT,
                                        "next_check_at": DT, "device_id": S, "features": A},
                                       {"expires_at": DT, "version_eligibility": O}),
    "DeactivationResponseData": ({"license_id": S, "status": S, "license_type": LICENSE_TYPES,
                                  "entitlement_version": I, "issued_at": DT, "device_id": S},
                                 {"expires_at": DT}),
    "FloatingCheckoutResponseData": ({"license_id": S, "status": S, "license_type": LICENSE_TYPES,
                                      "entitlement_version": I, "issued_at": DT, "device_id": S,
                                      "lease_token": S, "lease_expires_at": DT, "features": A},
                                     {"expires_at": DT, "version_eligibility": O}),
    "FloatingLeaseResponseData": ({"license_id": S, "status": S, "license_type": LICENSE_TYPES,
                                   "entitlement_version": I, "issued_at": DT, "device_id": S,
                                   "lease_expires_at": DT},
                                  {"expires_at": DT, "features": A, "version_eligibility": O}),
    "OfflineEnvelope": ({"kid": S, "salt": S, "nonce": S, "ciphertext": S}, {}),
}


def type_ok(value, spec) -> bool:
    if isinstance(spec, list):
        return value in spec
    if spec == S:
        return isinstance(value, str)
    if spec == I:
        return isinstance(value, int) and not isinstance(value, bool)
    if spec == B:
        return isinstance(value, bool)
    if spec == O:
        return isinstance(value, dict)
    if spec == A:
        return isinstance(value, list)
    if spec == DT:
        if not isinstance(value, str):
            return False
        try:
            parse_dt(value)
            return True
        except ValueError:
            return False
    raise AssertionError(spec)


def schema(obj, name: str, ctx: str) -> bool:
    required, optional = SCHEMAS[name]
    if not check(isinstance(obj, dict), f"{ctx}: {name} is not an object: {obj!r}"):
        return False
    ok = True
    for field, spec in required.items():
        if field not in obj:
            ok = check(False, f"{ctx}: {name} lacks required field `{field}`: {obj}") and ok
        elif not type_ok(obj[field], spec):
            ok = check(False, f"{ctx}: {name}.{field} has wrong type/value {obj[field]!r} (want {spec})") and ok
    for field, spec in optional.items():
        if field in obj and obj[field] is not None and not type_ok(obj[field], spec):
            ok = check(False, f"{ctx}: {name}.{field} has wrong type/value {obj[field]!r} (want {spec})") and ok
    if name == "APIKey" and isinstance(obj.get("scopes"), list):
        check(all(s in SCOPES for s in obj["scopes"]), f"{ctx}: unknown scopes {obj['scopes']}")
    if name in ("RuntimeEntitlementResponseData", "FloatingCheckoutResponseData",
                "FloatingLeaseResponseData") and isinstance(obj.get("features"), list):
        for f in obj["features"]:
            schema(f, "FeatureEntitlement", ctx + " features[]")
    if isinstance(obj.get("version_eligibility"), dict) and name.endswith("ResponseData"):
        schema(obj["version_eligibility"], "VersionEligibility", ctx + " version_eligibility")
    return ok


def meta_ok(r: Resp, ctx: str) -> None:
    meta = (r.json or {}).get("meta") if isinstance(r.json, dict) else None
    if check(isinstance(meta, dict), f"{ctx}: no meta object: {r!r}"):
        check(isinstance(meta.get("request_id"), str) and meta.get("request_id"),
              f"{ctx}: meta.request_id missing: {meta}")
        check(isinstance(meta.get("timestamp"), str) and type_ok(meta.get("timestamp"), DT),
              f"{ctx}: meta.timestamp missing or not date-time: {meta}")
    check(bool(r.headers.get("x-request-id")), f"{ctx}: no x-request-id header")


def expect(r: Resp, status: int, ctx: str, data_schema: str | None = None, list_of: str | None = None):
    """Checks a success response: status, JSON envelope `{data, meta}`, data schema."""
    if not check(r.status == status, f"{ctx}: expected {status}, got {r!r}"):
        return r.data
    if status == 204:
        check(r.raw == b"", f"{ctx}: 204 with a body {r.raw[:200]!r}")
        return None
    check("application/json" in r.headers.get("content-type", ""),
          f"{ctx}: content-type {r.headers.get('content-type')}")
    meta_ok(r, ctx)
    check(isinstance(r.json, dict) and "data" in r.json, f"{ctx}: no data: {r!r}")
    if data_schema:
        schema(r.data, data_schema, ctx)
    if list_of:
        if check(isinstance(r.data, list), f"{ctx}: data is not a list: {r!r}"):
            for item in r.data:
                schema(item, list_of, ctx + "[]")
    return r.data


def expect_error(r: Resp, status, ctx: str, code: str | None = None) -> str | None:
    """Checks an error response; `status` is one status or a tuple of acceptable ones."""
    ok = r.status in status if isinstance(status, tuple) else r.status == status
    if not check(ok, f"{ctx}: expected {status}{' ' + code if code else ''}, got {r!r}"):
        return None
    err = (r.json or {}).get("error") if isinstance(r.json, dict) else None
    if not check(isinstance(err, dict), f"{ctx}: error envelope missing: {r!r}"):
        return None
    check(isinstance(err.get("code"), str) and CODE_RE.match(err.get("code", "")) is not None,
          f"{ctx}: error.code not SCREAMING_SNAKE: {err}")
    check(isinstance(err.get("message"), str) and err.get("message"), f"{ctx}: error.message missing: {err}")
    if "detail" in err:
        check(isinstance(err["detail"], str), f"{ctx}: error.detail not a string: {err}")
    check("data" not in r.json, f"{ctx}: error envelope also has data: {r.json}")
    meta_ok(r, ctx)
    if code is not None:
        check(err.get("code") == code, f"{ctx}: expected code {code}, got {err.get('code')} ({err.get('message')})")
    return err.get("code")


# --------------------------------------------------------------------------------------------
# signed envelopes


class Keys:
    def __init__(self, keys: list[dict]):
        self.by_kid = {k["kid"]: VerifyKey(base64.b64decode(k["public_key"], validate=True)) for k in keys}

    def verify_data(self, data: dict, sig: dict, ctx: str) -> bool:
        if not check(isinstance(sig, dict), f"{ctx}: signature missing"):
            return False
        check(sig.get("alg") == "Ed25519", f"{ctx}: signature.alg {sig.get('alg')!r}")
        key = self.by_kid.get(sig.get("kid"))
        if not check(key is not None, f"{ctx}: signature.kid {sig.get('kid')!r} not in public keys"):
            return False
        msg = json.dumps(data, separators=(",", ":")).encode()
        try:
            key.verify(msg, base64.b64decode(sig.get("value", ""), validate=True))
            return True
        except (BadSignatureError, ValueError) as e:
            check(False, f"{ctx}: signature does not verify over compact JSON of data: {e}")
            return False


def signed(r: Resp, keys: Keys, ctx: str, data_schema: str, status: int = 200):
    """Checks a signed runtime envelope `{data, signature, meta}` (DESIGN 4.1)."""
    if not check(r.status == status, f"{ctx}: expected {status}, got {r!r}"):
        return None
    meta_ok(r, ctx)
    env = r.json
    check(set(env.keys()) >= {"data", "signature", "meta"}, f"{ctx}: envelope keys {list(env)}")
    data = env.get("data")
    schema(data, data_schema, ctx)
    keys.verify_data(data, env.get("signature"), ctx)
    # The signed bytes are the bytes as sent: the raw body must contain exactly the compact
    # re-emission of data.
    compact = json.dumps(data, separators=(",", ":")).encode()
    check(compact in r.raw, f"{ctx}: raw body does not carry data as compact JSON")
    for k in ("issued_at", "next_check_at", "expires_at", "lease_expires_at"):
        if isinstance(data, dict) and k in data:
            check(SIGNED_TS_RE.match(str(data[k])) is not None,
                  f"{ctx}: signed timestamp {k}={data[k]!r} not RFC3339 second precision Z")
    return data


# --------------------------------------------------------------------------------------------
# the scenarios


class Ctx:
    pass


def run(base_url: str, admin: str) -> None:
    c = Client(base_url)
    sfx = uuid.uuid4().hex[:8]
    x = Ctx()

    def M(method, path, body=None, token=None, **kw):
        return c.call(method, path, body, bearer=admin if token is None else token, **kw)

    def R(path, key, body, idem=None, **kw):
        return c.call("POST", "/api/v1/license/" + path, body, license_key=key, idem=idem, **kw)

    # ---------------- system
    for p in ("/health", "/healthz"):
        r = c.call("GET", p)
        d = expect(r, 200, f"GET {p}")
        check(isinstance(d, dict) and d.get("status") == "ok", f"GET {p}: data {d}")
    r = c.call("GET", "/readyz")
    d = expect(r, 200, "GET /readyz")
    check(isinstance(d, dict) and d.get("status") == "ready" and isinstance(d.get("db"), str),
          f"GET /readyz: data {d}")
    r = c.call("GET", "/metrics")
    check(r.status == 200 and "text/plain" in r.headers.get("content-type", ""),
          f"GET /metrics: {r.status} {r.headers.get('content-type')}")
    check(b"# TYPE" in r.raw or b"# HELP" in r.raw, "GET /metrics: not Prometheus text")
    r = c.call("GET", "/api/v1/system/public-keys")
    pks = expect(r, 200, "GET public-keys", list_of="PublicKey") or []
    check(any(k.get("status") == "active" for k in pks), f"no active public key: {pks}")
    check(all(k.get("algorithm") == "Ed25519" for k in pks), f"public key algorithms: {pks}")
    for k in pks:
        check(len(base64.b64decode(k.get("public_key", ""))) == 32, f"public key not 32 bytes: {k}")
    keys = Keys(pks)
    # DESIGN 5: the server serves its own OpenAPI document (the contract, amended).
    r = c.call("GET", "/openapi.json")
    if check(r.status == 200 and isinstance(r.json, dict), f"GET /openapi.json: {r.status}"):
        check(str(r.json.get("openapi", "")).startswith("3."), "openapi.json: no openapi version")
        for p in ("/api/v1/license/activate", "/api/v1/licenses/{id}/usage/reset", "/api/v1/events", "/metrics"):
            check(p in (r.json.get("paths") or {}), f"openapi.json lacks path {p}")

    # ---------------- auth errors (401)
    expect_error(c.call("GET", "/api/v1/products"), 401, "no credentials")
    expect_error(c.call("GET", "/api/v1/products", auth="Bearer lkm_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 401, "unknown token")
    expect_error(c.call("GET", "/api/v1/products", auth="Basic Zm9vOmJhcg=="), 401, "malformed auth scheme")
    expect_error(c.call("GET", "/api/v1/products", auth="Bearer"), 401, "empty bearer")
    expect_error(c.call("GET", "/api/v1/products", auth="License lsk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 401, "license key on management")
    expect_error(R("validate", "lsk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", {"fingerprint": "x"}), 401, "unknown license key")
    expect_error(c.call("POST", "/api/v1/license/validate", {"fingerprint": "x"}), 401, "runtime without credentials")
    expect_error(c.call("POST", "/api/v1/license/validate", {"fingerprint": "x"}, bearer=admin), 401, "bearer on runtime")

    # ---------------- products
    r = M("POST", "/api/v1/products", {"name": "Scenario Editor", "code": f"scen-{sfx}", "metadata": {"tier": "gold"}})
    prod = expect(r, 201, "createProduct", "Product") or {}
    check(prod.get("metadata") == {"tier": "gold"} and prod.get("code") == f"scen-{sfx}", f"createProduct echo: {prod}")
    pid = prod.get("id", "missing")
    r = M("POST", "/api/v1/products", {"name": "x", "code": f"scen-{sfx}"})
    expect_error(r, 409, "createProduct duplicate code")
    expect_error(M("POST", "/api/v1/products", raw=b'{"name": "x", "code": '), 400, "createProduct bad JSON")
    expect_error(M("POST", "/api/v1/products", {"name": "x", "code": f"u-{sfx}", "bogus": 1}), 400, "createProduct unknown field")
    expect_error(M("POST", "/api/v1/products", {"name": 5, "code": f"t-{sfx}"}), 400, "createProduct wrong type")
    expect_error(M("POST", "/api/v1/products", {"name": "missing code"}), 400, "createProduct missing required field")
    # A body over the limit is answered 413 without being read (hardening: nobody makes the
    # server read megabytes before it is authenticated). A client that writes its whole body
    # before reading still gets the 413 while the server lingers over up to 1 MiB of it.
    over = json.dumps({"name": "x" * (512 * 1024), "code": f"over-{sfx}"}).encode()
    try:
        r = M("POST", "/api/v1/products", raw=over)
        expect_error(r, 413, "createProduct 512 KiB body")
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        check(False, f"createProduct 512 KiB body: connection failed instead of 413: {e}")
    # 16 MiB is more than the server lingers over: a 413 or a closed connection, never a read.
    big = json.dumps({"name": "x" * (16 * 1024 * 1024), "code": f"big-{sfx}"}).encode()
    try:
        r = M("POST", "/api/v1/products", raw=big)
        expect_error(r, 413, "createProduct 16 MiB body")
    except (ConnectionError, http.client.HTTPException, OSError):
        pass
    for i in range(3):
        expect(M("POST", "/api/v1/products", {"name": f"Filler {i}", "code": f"fill{i}-{sfx}"}), 201, "createProduct filler", "Product")
    r = M("GET", "/api/v1/products", query={"limit": 2})
    lst = expect(r, 200, "listProducts limit=2", list_of="Product")
    check(isinstance(lst, list) and len(lst) == 2, f"listProducts limit=2 returned {len(lst or [])}")
    r = M("GET", "/api/v1/products")
    lst = expect(r, 200, "listProducts", list_of="Product") or []
    check(len(lst) >= 4, f"listProducts default returned {len(lst)}")
    expect(M("GET", "/api/v1/products", query={"limit": 500}), 200, "listProducts limit=500 (clamped)", list_of="Product")
    expect_error(M("GET", "/api/v1/products", query={"limit": "abc"}), 400, "listProducts limit=abc")
    expect_error(M("GET", "/api/v1/products", query={"limit": 0}), 400, "listProducts limit=0")
    expect(M("GET", f"/api/v1/products/{pid}"), 200, "getProduct", "Product")
    expect_error(M("GET", "/api/v1/products/does-not-exist"), 404, "getProduct unknown")
    r = M("PATCH", f"/api/v1/products/{pid}", {"name": "Scenario Editor 2", "metadata": {"tier": "platinum"}})
    up = expect(r, 200, "updateProduct", "Product") or {}
    check(up.get("name") == "Scenario Editor 2" and up.get("code") == f"scen-{sfx}" and up.get("metadata") == {"tier": "platinum"},
          f"updateProduct result {up}")
    expect_error(M("PATCH", f"/api/v1/products/{pid}", {"code": f"fill0-{sfx}"}), 409, "updateProduct duplicate code")
    expect_error(M("PATCH", f"/api/v1/products/{pid}", {"nope": 1}), 400, "updateProduct unknown field")
    expect_error(M("PATCH", "/api/v1/products/does-not-exist", {"name": "x"}), 404, "updateProduct unknown")
    tmp = expect(M("POST", "/api/v1/products", {"name": "Temp", "code": f"tmp-{sfx}"}), 201, "createProduct temp", "Product") or {}
    expect(M("DELETE", f"/api/v1/products/{tmp.get('id')}"), 204, "deleteProduct")
    expect_error(M("GET", f"/api/v1/products/{tmp.get('id')}"), 404, "getProduct after delete")
    expect_error(M("DELETE", f"/api/v1/products/{tmp.get('id')}"), 404, "deleteProduct again")

    # ---------------- product versions
    r = M("POST", f"/api/v1/products/{pid}/versions",
          {"version": "1.0.0", "released_at": "2020-01-01T00:00:00Z", "metadata": {"notes": "first"}})
    v1 = expect(r, 201, "createProductVersion", "ProductVersion") or {}
    check(v1.get("version") == "1.0.0" and v1.get("product_id") == pid, f"createProductVersion: {v1}")
    v2 = expect(M("POST", f"/api/v1/products/{pid}/versions", {"version": "2.0.0", "released_at": iso(NOW - timedelta(days=10))}),
                201, "createProductVersion 2", "ProductVersion") or {}
    v3 = expect(M("POST", f"/api/v1/products/{pid}/versions", {"version": "0.9.0"}), 201, "createProductVersion default released_at", "ProductVersion") or {}
    if v3.get("released_at"):
        check(abs((parse_dt(v3["released_at"]) - NOW).total_seconds()) < 600, f"released_at default not now: {v3}")
    expect_error(M("POST", f"/api/v1/products/{pid}/versions", {"version": "1.0.0"}), 409, "createProductVersion duplicate")
    expect_error(M("POST", f"/api/v1/products/{pid}/versions", {"version": "not-semver"}), 422, "createProductVersion not semver")
    expect_error(M("POST", "/api/v1/products/does-not-exist/versions", {"version": "1.0.0"}), 404, "createProductVersion unknown product")
    expect_error(M("POST", f"/api/v1/products/{pid}/versions", {"version": "3.0.0", "x": 1}), 400, "createProductVersion unknown field")
    lst = expect(M("GET", f"/api/v1/products/{pid}/versions", query={"limit": 2}), 200, "listProductVersions", list_of="ProductVersion")
    check(isinstance(lst, list) and len(lst) == 2, f"listProductVersions limit=2: {lst}")

    # ---------------- policies
    full_policy = {
        "name": "Everything", "code": f"all-{sfx}", "license_type": "time_limited",
        "max_activations": 3, "max_floating_users": 0, "max_container_instances": 3,
        "floating_timeout_minutes": 15, "grace_period_days": 0, "validation_interval_minutes": 60,
        "require_heartbeat": False, "allow_offline_activation": True, "offline_grace_days": 7,
        "allow_vm": False, "allow_container": True, "max_transfers": 5, "metadata": {"k": "v"},
    }
    r = M("POST", f"/api/v1/products/{pid}/policies", full_policy)
    pol = expect(r, 201, "createPolicy all fields", "Policy") or {}
    for k, v in full_policy.items():
        check(pol.get(k) == v, f"createPolicy: field {k} = {pol.get(k)!r}, sent {v!r}")
    check(pol.get("product_id") == pid, f"createPolicy product_id {pol.get('product_id')}")
    r = M("POST", f"/api/v1/products/{pid}/policies", {"name": "Minimal", "code": f"min-{sfx}", "license_type": "perpetual"})
    minpol = expect(r, 201, "createPolicy minimal", "Policy") or {}
    expect_error(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Dup", "code": f"min-{sfx}", "license_type": "perpetual"}),
                 409, "createPolicy duplicate code")
    expect_error(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Bad", "code": f"bad-{sfx}", "license_type": "forever"}),
                 400, "createPolicy bad enum")
    expect_error(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Bad", "code": f"bad-{sfx}", "license_type": "perpetual", "zzz": 1}),
                 400, "createPolicy unknown field")
    expect_error(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Bad", "code": f"bad-{sfx}", "license_type": "perpetual", "max_activations": "2"}),
                 400, "createPolicy wrong type")
    expect_error(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Bad", "code": f"bad2-{sfx}", "license_type": "perpetual", "floating_timeout_minutes": 0}),
                 422, "createPolicy floating_timeout_minutes 0")
    expect_error(M("POST", "/api/v1/products/does-not-exist/policies", {"name": "Bad", "code": f"bad3-{sfx}", "license_type": "perpetual"}),
                 404, "createPolicy unknown product")
    upd = {
        "name": "Everything 2", "code": f"all2-{sfx}", "license_type": "subscription",
        "max_activations": 3, "max_floating_users": 1, "max_container_instances": 4,
        "floating_timeout_minutes": 20, "grace_period_days": 2, "validation_interval_minutes": 30,
        "require_heartbeat": True, "allow_offline_activation": False, "offline_grace_days": 3,
        "allow_vm": True, "allow_container": False, "max_transfers": 6, "metadata": {"k": "w"},
    }
    r = M("PATCH", f"/api/v1/policies/{pol.get('id')}", upd)
    pol2 = expect(r, 200, "updatePolicy all fields", "Policy") or {}
    for k, v in upd.items():
        check(pol2.get(k) == v, f"updatePolicy: field {k} = {pol2.get(k)!r}, sent {v!r}")
    # restore the shape the scenarios below rely on
    expect(M("PATCH", f"/api/v1/policies/{pol.get('id')}", full_policy), 200, "updatePolicy restore", "Policy")
    expect_error(M("PATCH", f"/api/v1/policies/{pol.get('id')}", {"code": f"min-{sfx}"}), 409, "updatePolicy duplicate code")
    expect_error(M("PATCH", f"/api/v1/policies/{pol.get('id')}", {"what": 1}), 400, "updatePolicy unknown field")
    expect_error(M("PATCH", "/api/v1/policies/does-not-exist", {"name": "x"}), 404, "updatePolicy unknown")
    expect(M("GET", f"/api/v1/policies/{pol.get('id')}"), 200, "getPolicy", "Policy")
    expect_error(M("GET", "/api/v1/policies/does-not-exist"), 404, "getPolicy unknown")
    lst = expect(M("GET", f"/api/v1/products/{pid}/policies", query={"limit": 1}), 200, "listPoliciesByProduct", list_of="Policy")
    check(isinstance(lst, list) and len(lst) == 1, f"listPoliciesByProduct limit=1: {lst}")
    tmppol = expect(M("POST", f"/api/v1/products/{pid}/policies", {"name": "T", "code": f"tmp-{sfx}", "license_type": "trial"}),
                    201, "createPolicy temp", "Policy") or {}
    expect(M("DELETE", f"/api/v1/policies/{tmppol.get('id')}"), 204, "deletePolicy")
    expect_error(M("DELETE", f"/api/v1/policies/{tmppol.get('id')}"), 404, "deletePolicy again")

    # ---------------- features
    r = M("POST", f"/api/v1/products/{pid}/features", {"name": "Export", "code": f"export_{sfx}", "metadata": {"a": 1}})
    feat = expect(r, 201, "createFeature", "Feature") or {}
    feat2 = expect(M("POST", f"/api/v1/products/{pid}/features", {"name": "Print", "code": f"print_{sfx}"}), 201, "createFeature 2", "Feature") or {}
    feat3 = expect(M("POST", f"/api/v1/products/{pid}/features", {"name": "Unassigned", "code": f"none_{sfx}"}), 201, "createFeature 3", "Feature") or {}
    expect_error(M("POST", f"/api/v1/products/{pid}/features", {"name": "Export", "code": f"export_{sfx}"}), 409, "createFeature duplicate")
    expect_error(M("POST", f"/api/v1/products/{pid}/features", {"name": "Export", "code": f"e_{sfx}", "x": 1}), 400, "createFeature unknown field")
    expect_error(M("POST", "/api/v1/products/does-not-exist/features", {"name": "E", "code": f"e_{sfx}"}), 404, "createFeature unknown product")
    expect(M("GET", f"/api/v1/features/{feat.get('id')}"), 200, "getFeature", "Feature")
    expect_error(M("GET", "/api/v1/features/does-not-exist"), 404, "getFeature unknown")
    lst = expect(M("GET", f"/api/v1/products/{pid}/features", query={"limit": 2}), 200, "listFeaturesByProduct", list_of="Feature")
    check(isinstance(lst, list) and len(lst) == 2, f"listFeaturesByProduct limit=2: {lst}")

    # ---------------- customers
    r = M("POST", "/api/v1/customers", {"name": "Acme", "code": f"acme-{sfx}", "email": "ops@acme.test", "metadata": {"region": "eu"}})
    cust = expect(r, 201, "createCustomer", "Customer") or {}
    check(cust.get("email") == "ops@acme.test", f"createCustomer email: {cust}")
    cust2 = expect(M("POST", "/api/v1/customers", {"name": "Beta", "code": f"beta-{sfx}"}), 201, "createCustomer 2", "Customer") or {}
    expect_error(M("POST", "/api/v1/customers", {"name": "Acme", "code": f"acme-{sfx}"}), 409, "createCustomer duplicate")
    expect_error(M("POST", "/api/v1/customers", {"name": "Acme", "code": f"a2-{sfx}", "phone": "1"}), 400, "createCustomer unknown field")
    expect(M("GET", f"/api/v1/customers/{cust.get('id')}"), 200, "getCustomer", "Customer")
    expect_error(M("GET", "/api/v1/customers/does-not-exist"), 404, "getCustomer unknown")
    r = M("PATCH", f"/api/v1/customers/{cust.get('id')}", {"name": "Acme Corp", "email": "it@acme.test"})
    cu = expect(r, 200, "updateCustomer", "Customer") or {}
    check(cu.get("name") == "Acme Corp" and cu.get("email") == "it@acme.test", f"updateCustomer: {cu}")
    expect_error(M("PATCH", f"/api/v1/customers/{cust.get('id')}", {"code": f"beta-{sfx}"}), 409, "updateCustomer duplicate code")
    expect_error(M("PATCH", "/api/v1/customers/does-not-exist", {"name": "x"}), 404, "updateCustomer unknown")
    lst = expect(M("GET", "/api/v1/customers", query={"limit": 1}), 200, "listCustomers", list_of="Customer")
    check(isinstance(lst, list) and len(lst) == 1, f"listCustomers limit=1: {lst}")
    tmpc = expect(M("POST", "/api/v1/customers", {"name": "Tmp", "code": f"tmpc-{sfx}"}), 201, "createCustomer tmp", "Customer") or {}
    expect(M("DELETE", f"/api/v1/customers/{tmpc.get('id')}"), 204, "deleteCustomer")
    expect_error(M("DELETE", f"/api/v1/customers/{tmpc.get('id')}"), 404, "deleteCustomer again")

    # ---------------- subscriptions
    sub_body = {"customer_id": cust.get("id"), "external_system": "stripe", "external_id": f"sub_{sfx}",
                "status": "active", "current_period_start": iso(NOW - timedelta(days=1)),
                "current_period_end": iso(NOW + timedelta(days=29)), "cancel_at_period_end": False,
                "metadata": {"plan": "pro"}}
    r = M("POST", f"/api/v1/products/{pid}/subscriptions", sub_body)
    sub = expect(r, 201, "createSubscription", "Subscription") or {}
    check(sub.get("customer_id") == cust.get("id") and sub.get("status") == "active", f"createSubscription: {sub}")
    r = M("POST", f"/api/v1/products/{pid}/subscriptions", {k: v for k, v in sub_body.items() if k != "cancel_at_period_end"} | {"external_id": f"sub2_{sfx}"})
    sub_b = expect(r, 201, "createSubscription default cancel_at_period_end", "Subscription") or {}
    check(sub_b.get("cancel_at_period_end") is False, f"cancel_at_period_end default: {sub_b}")
    expect_error(M("POST", f"/api/v1/products/{pid}/subscriptions", sub_body), 409, "createSubscription duplicate external id")
    expect_error(M("POST", f"/api/v1/products/{pid}/subscriptions", sub_body | {"external_id": f"sub3_{sfx}", "canceled_at": iso(NOW)}),
                 422, "createSubscription canceled_at with active status")
    expect_error(M("POST", f"/api/v1/products/{pid}/subscriptions", sub_body | {"external_id": f"sub4_{sfx}", "status": "gone"}),
                 400, "createSubscription bad enum")
    expect_error(M("POST", "/api/v1/products/does-not-exist/subscriptions", sub_body | {"external_id": f"sub5_{sfx}"}),
                 404, "createSubscription unknown product")
    expect(M("GET", f"/api/v1/subscriptions/{sub.get('id')}"), 200, "getSubscription", "Subscription")
    expect_error(M("GET", "/api/v1/subscriptions/does-not-exist"), 404, "getSubscription unknown")
    r = M("PATCH", f"/api/v1/subscriptions/{sub_b.get('id')}", {"status": "canceled", "canceled_at": iso(NOW), "customer_id": ""})
    sb = expect(r, 200, "updateSubscription", "Subscription") or {}
    check(sb.get("status") == "canceled" and not sb.get("customer_id"), f"updateSubscription (cancel, clear customer): {sb}")
    expect_error(M("PATCH", "/api/v1/subscriptions/does-not-exist", {"status": "paused"}), 404, "updateSubscription unknown")
    expect_error(M("PATCH", f"/api/v1/subscriptions/{sub.get('id')}", {"foo": 1}), 400, "updateSubscription unknown field")
    lst = expect(M("GET", f"/api/v1/products/{pid}/subscriptions", query={"limit": 1}), 200, "listProductSubscriptions", list_of="Subscription")
    check(isinstance(lst, list) and len(lst) == 1, f"listProductSubscriptions limit=1: {lst}")

    # ---------------- orders
    order_body = {"customer_id": cust.get("id"), "subscription_id": sub.get("id"), "external_system": "stripe",
                  "external_id": f"ord_{sfx}", "status": "paid", "period_start": iso(NOW - timedelta(days=1)),
                  "period_end": iso(NOW + timedelta(days=29)), "metadata": {"invoice": "in_1"}}
    order = expect(M("POST", f"/api/v1/products/{pid}/orders", order_body), 201, "createOrder", "Order") or {}
    check(order.get("subscription_id") == sub.get("id"), f"createOrder subscription link: {order}")
    order2 = expect(M("POST", f"/api/v1/products/{pid}/orders", {"external_system": "manual", "external_id": f"ord2_{sfx}", "status": "pending"}),
                    201, "createOrder minimal", "Order") or {}
    expect_error(M("POST", f"/api/v1/products/{pid}/orders", order_body), 409, "createOrder duplicate external id")
    expect_error(M("POST", f"/api/v1/products/{pid}/orders", {"external_system": "m", "external_id": f"o3_{sfx}", "status": "paid",
                                                             "period_start": iso(NOW)}), 422, "createOrder period_start without period_end")
    expect_error(M("POST", "/api/v1/products/does-not-exist/orders", {"external_system": "m", "external_id": f"o4_{sfx}", "status": "paid"}),
                 404, "createOrder unknown product")
    expect(M("GET", f"/api/v1/orders/{order.get('id')}"), 200, "getOrder", "Order")
    expect_error(M("GET", "/api/v1/orders/does-not-exist"), 404, "getOrder unknown")
    ou = expect(M("PATCH", f"/api/v1/orders/{order2.get('id')}", {"status": "fulfilled", "customer_id": cust2.get("id")}),
                200, "updateOrder", "Order") or {}
    check(ou.get("status") == "fulfilled" and ou.get("customer_id") == cust2.get("id"), f"updateOrder: {ou}")
    ou = expect(M("PATCH", f"/api/v1/orders/{order2.get('id')}", {"customer_id": ""}), 200, "updateOrder clear customer", "Order") or {}
    check(not ou.get("customer_id"), f"updateOrder clear customer: {ou}")
    expect_error(M("PATCH", "/api/v1/orders/does-not-exist", {"status": "paid"}), 404, "updateOrder unknown")
    lst = expect(M("GET", f"/api/v1/products/{pid}/orders", query={"limit": 1}), 200, "listProductOrders", list_of="Order")
    check(isinstance(lst, list) and len(lst) == 1, f"listProductOrders limit=1: {lst}")

    # ---------------- custom fields
    defs = {}
    for rt in ("customer", "license"):
        for vt in ("string", "integer", "boolean", "datetime", "enum"):
            body = {"resource_type": rt, "code": f"{rt}_{vt}_{sfx}", "name": f"{rt} {vt}", "value_type": vt,
                    "is_required": False, "metadata": {"ui": "x"}}
            if vt == "enum":
                body["enum_options"] = ["gold", "silver"]
            d = expect(M("POST", f"/api/v1/products/{pid}/custom-fields", body), 201, f"createCustomField {rt}/{vt}", "CustomFieldDefinition") or {}
            defs[(rt, vt)] = d.get("id", "missing")
    expect_error(M("POST", f"/api/v1/products/{pid}/custom-fields", {"resource_type": "customer", "code": f"customer_string_{sfx}", "name": "dup", "value_type": "string"}),
                 409, "createCustomField duplicate code")
    expect_error(M("POST", f"/api/v1/products/{pid}/custom-fields", {"resource_type": "device", "code": f"cf_{sfx}", "name": "x", "value_type": "string"}),
                 400, "createCustomField bad resource_type")
    expect_error(M("POST", "/api/v1/products/does-not-exist/custom-fields", {"resource_type": "customer", "code": f"cf_{sfx}", "name": "x", "value_type": "string"}),
                 404, "createCustomField unknown product")
    cf = defs[("customer", "string")]
    expect(M("GET", f"/api/v1/products/{pid}/custom-fields/{cf}"), 200, "getCustomField", "CustomFieldDefinition")
    expect_error(M("GET", f"/api/v1/products/{pid}/custom-fields/does-not-exist"), 404, "getCustomField unknown")
    d = expect(M("PATCH", f"/api/v1/products/{pid}/custom-fields/{defs[('customer', 'enum')]}", {"name": "Tier", "enum_options": ["gold", "silver", "bronze"]}),
               200, "updateCustomField", "CustomFieldDefinition") or {}
    check(d.get("enum_options") == ["gold", "silver", "bronze"] and d.get("name") == "Tier", f"updateCustomField: {d}")
    expect_error(M("PATCH", f"/api/v1/products/{pid}/custom-fields/{cf}", {"value_type": "integer"}), 400, "updateCustomField value_type not updatable")
    expect_error(M("PATCH", f"/api/v1/products/{pid}/custom-fields/does-not-exist", {"name": "x"}), 404, "updateCustomField unknown")
    lst = expect(M("GET", f"/api/v1/products/{pid}/custom-fields", query={"limit": 3}), 200, "listCustomFields", list_of="CustomFieldDefinition")
    check(isinstance(lst, list) and len(lst) == 3, f"listCustomFields limit=3: {len(lst or [])}")
    cid = cust.get("id")
    for vt, val in (("string", {"string_value": "hello"}), ("integer", {"integer_value": 42}), ("boolean", {"boolean_value": True}),
                    ("datetime", {"datetime_value": "2026-01-02T03:04:05Z"}), ("enum", {"enum_value": "bronze"})):
        v = expect(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('customer', vt)]}", val), 200,
                   f"upsertCustomerCustomFieldValue {vt}", "CustomFieldValue") or {}
        k, want = next(iter(val.items()))
        got = v.get(k)
        if k == "datetime_value" and isinstance(got, str):
            check(parse_dt(got) == parse_dt(want), f"custom value {vt}: {v}")
        else:
            check(got == want, f"custom value {vt}: {v}")
        check(v.get("resource_id") == cid and v.get("definition_id") == defs[("customer", vt)], f"custom value ids: {v}")
    expect_error(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('customer', 'integer')]}", {"string_value": "nope"}),
                 422, "upsert value of the wrong type")
    expect_error(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('customer', 'enum')]}", {"enum_value": "platinum"}),
                 422, "upsert enum value not in options")
    expect_error(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('customer', 'integer')]}", {"integer_value": "42"}),
                 400, "upsert value with wrong JSON type")
    expect_error(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('customer', 'string')]}", {"string_value": "a", "integer_value": 1}),
                 422, "upsert two values")
    expect_error(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('customer', 'string')]}", {}),
                 422, "upsert no value")
    # A license field is not a field of customers: not found for this resource, or invalid.
    expect_error(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('license', 'string')]}", {"string_value": "a"}),
                 (404, 422), "upsert a license field on a customer")
    expect_error(M("PUT", f"/api/v1/customers/does-not-exist/custom-fields/{cf}", {"string_value": "a"}), 404, "upsert unknown customer")
    expect_error(M("PUT", f"/api/v1/customers/{cid}/custom-fields/does-not-exist", {"string_value": "a"}), 404, "upsert unknown field")
    lst = expect(M("GET", f"/api/v1/customers/{cid}/custom-fields"), 200, "listCustomerCustomFieldValues", list_of="CustomFieldValue") or []
    check(len(lst) == 5, f"listCustomerCustomFieldValues: {len(lst)} values")
    expect_error(M("GET", "/api/v1/customers/does-not-exist/custom-fields"), 404, "listCustomerCustomFieldValues unknown")
    expect(M("PUT", f"/api/v1/customers/{cid}/custom-fields/{defs[('customer', 'boolean')]}", {"clear": True}), 204, "clear customer value")
    lst = expect(M("GET", f"/api/v1/customers/{cid}/custom-fields"), 200, "listCustomerCustomFieldValues after clear", list_of="CustomFieldValue") or []
    check(len(lst) == 4, f"after clear: {len(lst)} values")
    # A definition with values is in use (DESIGN 5: "delete while in use" is 409).
    expect_error(M("DELETE", f"/api/v1/products/{pid}/custom-fields/{cf}"), 409, "deleteCustomField in use")
    expect(M("DELETE", f"/api/v1/products/{pid}/custom-fields/{defs[('customer', 'boolean')]}"), 204, "deleteCustomField")
    expect_error(M("DELETE", f"/api/v1/products/{pid}/custom-fields/{defs[('customer', 'boolean')]}"), 404, "deleteCustomField again")

    # ---------------- api keys and scopes
    r = M("POST", "/api/v1/api-keys", {"name": "reader", "scopes": ["product:read"]})
    ak = expect(r, 201, "createAPIKey", None) or {}
    schema(ak.get("api_key"), "APIKey", "createAPIKey api_key")
    check(isinstance(ak.get("token"), str) and ak.get("token", "").startswith("lkm_"), f"createAPIKey token: {ak.get('token')}")
    check((ak.get("api_key") or {}).get("scopes") == ["product:read"], f"createAPIKey scopes: {ak}")
    check(ak.get("token", "").startswith((ak.get("api_key") or {}).get("key_prefix", "\0")), "token does not start with key_prefix")
    reader = ak.get("token", "x")
    dflt = expect(M("POST", "/api/v1/api-keys", {"name": "default"}), 201, "createAPIKey default scopes") or {}
    check((dflt.get("api_key") or {}).get("scopes") == ["admin"], f"createAPIKey default scopes: {dflt}")
    expect_error(M("POST", "/api/v1/api-keys", {"name": "bad", "scopes": ["root"]}), 400, "createAPIKey unknown scope")
    lst = expect(M("GET", "/api/v1/api-keys", query={"limit": 2}), 200, "listAPIKeys", list_of="APIKey")
    check(isinstance(lst, list) and len(lst) == 2, f"listAPIKeys limit=2: {lst}")
    check(all("token" not in k for k in (lst or [])), "listAPIKeys leaks token")
    expect(M("GET", "/api/v1/products", token=reader), 200, "reader listProducts", list_of="Product")
    expect(M("GET", f"/api/v1/products/{pid}", token=reader), 200, "reader getProduct", "Product")
    expect_error(M("POST", "/api/v1/products", {"name": "x", "code": f"r-{sfx}"}, token=reader), 403, "reader createProduct", "TOKEN_SCOPE_DENIED")
    expect_error(M("GET", "/api/v1/customers", token=reader), 403, "reader listCustomers", "TOKEN_SCOPE_DENIED")
    expect_error(M("GET", "/api/v1/licenses", token=reader), 403, "reader listLicenses", "TOKEN_SCOPE_DENIED")
    expect_error(M("GET", "/api/v1/events", token=reader), 403, "reader listEvents", "TOKEN_SCOPE_DENIED")
    expect_error(M("GET", "/api/v1/webhooks", token=reader), 403, "reader listWebhooks", "TOKEN_SCOPE_DENIED")
    expect_error(M("GET", "/api/v1/api-keys", token=reader), 403, "reader listAPIKeys", "TOKEN_SCOPE_DENIED")
    expect_error(M("DELETE", f"/api/v1/policies/{minpol.get('id')}", token=reader), 403, "reader deletePolicy", "TOKEN_SCOPE_DENIED")
    lw = expect(M("POST", "/api/v1/api-keys", {"name": "lic", "scopes": ["license:read", "event:read"]}), 201, "createAPIKey license:read") or {}
    lic_reader = lw.get("token", "x")
    expect_error(M("GET", "/api/v1/products", token=lic_reader), 403, "license:read listProducts", "TOKEN_SCOPE_DENIED")
    expect(M("GET", "/api/v1/licenses", token=lic_reader), 200, "license:read listLicenses", list_of="License")
    expect_error(M("POST", "/api/v1/api-keys", {"name": "old", "expires_at": "2020-01-01T00:00:00Z"}), 422, "createAPIKey expires_at in the past")
    soon = expect(M("POST", "/api/v1/api-keys", {"name": "soon", "expires_at": iso(datetime.now(timezone.utc) + timedelta(seconds=2))}),
                  201, "createAPIKey expiring soon") or {}
    if soon.get("token"):
        time.sleep(3.1)
        expect_error(M("GET", "/api/v1/products", token=soon["token"]), 401, "expired token")
    cidr = expect(M("POST", "/api/v1/api-keys", {"name": "net", "allowed_cidrs": ["10.11.12.0/24"]}), 201, "createAPIKey allowed_cidrs") or {}
    if cidr.get("token"):
        check((cidr.get("api_key") or {}).get("allowed_cidrs") == ["10.11.12.0/24"], f"allowed_cidrs echo: {cidr}")
        expect_error(M("GET", "/api/v1/products", token=cidr["token"]), 401, "token outside allowed_cidrs")
    loop = expect(M("POST", "/api/v1/api-keys", {"name": "lo", "allowed_cidrs": ["127.0.0.0/8", "::1/128"]}), 201, "createAPIKey loopback cidr") or {}
    if loop.get("token"):
        expect(M("GET", "/api/v1/products", token=loop["token"]), 200, "token inside allowed_cidrs")
    expect_error(M("POST", "/api/v1/api-keys", {"name": "badnet", "allowed_cidrs": ["not-a-cidr"]}), 422, "createAPIKey bad cidr")

    # ---------------- webhooks
    r = M("POST", "/api/v1/webhooks", {"name": "hook", "url": "https://hooks.example.invalid/licentia",
                                       "event_types": ["license.created"], "is_active": True})
    wh = expect(r, 201, "createWebhookEndpoint") or {}
    schema(wh.get("webhook"), "WebhookEndpoint", "createWebhookEndpoint webhook")
    check(isinstance(wh.get("secret"), str) and wh.get("secret"), f"createWebhookEndpoint secret: {wh}")
    whid = (wh.get("webhook") or {}).get("id", "missing")
    wh2 = expect(M("POST", "/api/v1/webhooks", {"name": "custom", "url": "https://hooks.example.invalid/2", "secret": "my-own-secret-value-123456"}),
                 201, "createWebhookEndpoint custom secret") or {}
    check(wh2.get("secret") == "my-own-secret-value-123456", f"custom secret not kept: {wh2.get('secret')}")
    expect_error(M("POST", "/api/v1/webhooks", {"name": "bad", "url": "not a url"}), 422, "createWebhookEndpoint bad url")
    expect_error(M("POST", "/api/v1/webhooks", {"name": "bad", "url": "https://x.invalid", "x": 1}), 400, "createWebhookEndpoint unknown field")
    expect(M("GET", f"/api/v1/webhooks/{whid}"), 200, "getWebhookEndpoint", "WebhookEndpoint")
    expect_error(M("GET", "/api/v1/webhooks/does-not-exist"), 404, "getWebhookEndpoint unknown")
    lst = expect(M("GET", "/api/v1/webhooks", query={"limit": 1}), 200, "listWebhookEndpoints", list_of="WebhookEndpoint")
    check(isinstance(lst, list) and len(lst) == 1, f"listWebhookEndpoints limit=1: {lst}")
    check(all("secret" not in w for w in (lst or [])), "listWebhookEndpoints leaks secret")
    u = expect(M("PATCH", f"/api/v1/webhooks/{whid}", {"name": "hook2", "event_types": [], "is_active": False}), 200,
               "updateWebhookEndpoint", "WebhookEndpoint") or {}
    check(u.get("name") == "hook2" and u.get("event_types") == [] and u.get("is_active") is False, f"updateWebhookEndpoint: {u}")
    rot = expect(M("PATCH", f"/api/v1/webhooks/{whid}", {"rotate_secret": True}), 200, "updateWebhookEndpoint rotate") or {}
    schema(rot.get("webhook"), "WebhookEndpoint", "rotate webhook")
    check(isinstance(rot.get("secret"), str) and rot.get("secret") != wh.get("secret"), f"rotate secret: {rot}")
    expect_error(M("PATCH", f"/api/v1/webhooks/{whid}", {"rotate_secret": True, "secret": "abcdefabcdefabcdef"}), 422,
                 "updateWebhookEndpoint rotate+secret")
    expect_error(M("PATCH", "/api/v1/webhooks/does-not-exist", {"name": "x"}), 404, "updateWebhookEndpoint unknown")
    expect(M("DELETE", f"/api/v1/webhooks/{(wh2.get('webhook') or {}).get('id')}"), 204, "deleteWebhookEndpoint")
    expect_error(M("DELETE", f"/api/v1/webhooks/{(wh2.get('webhook') or {}).get('id')}"), 404, "deleteWebhookEndpoint again")

    # ---------------- licenses
    lic_body = {"product_id": pid, "policy_id": pol.get("id"), "customer_id": cid, "order_id": order.get("id"),
                "customer_email": "dev@acme.test", "customer_name": "Dev", "starts_at": iso(NOW - timedelta(days=1)),
                "expires_at": iso(NOW + timedelta(days=30)), "metadata": {"seat": "a"}}
    r = M("POST", "/api/v1/licenses", lic_body)
    lc = expect(r, 201, "createLicense") or {}
    lic = lc.get("license") or {}
    schema(lic, "License", "createLicense license")
    key = lc.get("license_key", "")
    check(re.match(r"^lsk_[a-z2-7]{32}$", key or "") is not None or re.match(r"^lsk_[A-Z2-7]{32}$", key or "") is not None,
          f"license key format: {key!r}")
    check(lic.get("subscription_id") == sub.get("id"), f"createLicense did not infer subscription_id from the order: {lic}")
    check(key.startswith(lic.get("license_key_prefix", "\0")) and key.endswith(lic.get("license_key_last4", "\0")),
          f"license_key_prefix/last4 do not match key: {lic}")
    check(lic.get("status") == "active" and lic.get("active_device_count") == 0, f"new license: {lic}")
    lid = lic.get("id", "missing")
    expect_error(M("POST", "/api/v1/licenses", {"product_id": pid, "policy_id": "does-not-exist"}), 404, "createLicense unknown policy")
    expect_error(M("POST", "/api/v1/licenses", {"product_id": pid, "policy_id": pol.get("id"), "key": "x"}), 400, "createLicense unknown field")
    expect_error(M("POST", "/api/v1/licenses", {"product_id": pid, "policy_id": pol.get("id"),
                                                "maintenance_expires_at": iso(NOW)}), 422, "createLicense maintenance on non-perpetual")
    other = expect(M("POST", "/api/v1/products", {"name": "Other", "code": f"other-{sfx}"}), 201, "createProduct other", "Product") or {}
    opol = expect(M("POST", f"/api/v1/products/{other.get('id')}/policies", {"name": "P", "code": f"op-{sfx}", "license_type": "perpetual"}),
                  201, "createPolicy other", "Policy") or {}
    expect_error(M("POST", "/api/v1/licenses", {"product_id": pid, "policy_id": opol.get("id")}), 422, "createLicense policy of another product")
    expect_error(M("POST", "/api/v1/licenses", {"product_id": other.get("id"), "policy_id": opol.get("id"), "order_id": order.get("id")}),
                 422, "createLicense order of another product")
    expect(M("GET", f"/api/v1/licenses/{lid}"), 200, "getLicense", "License")
    expect_error(M("GET", "/api/v1/licenses/does-not-exist"), 404, "getLicense unknown")
    for q in ({"product_id": pid}, {"policy_id": pol.get("id")}, {"customer_id": cid}, {"status": "active"},
              {"order_id": order.get("id")}, {"subscription_id": sub.get("id")},
              {"expires_before": iso(NOW + timedelta(days=31))}, {"expires_after": iso(NOW + timedelta(days=29))}):
        lst = expect(M("GET", "/api/v1/licenses", query=q | {"limit": 10}), 200, f"listLicenses {q}", list_of="License") or []
        check(any(li.get("id") == lid for li in lst), f"listLicenses {q} misses the license")
    lst = expect(M("GET", "/api/v1/licenses", query={"expires_before": iso(NOW + timedelta(days=1))}), 200, "listLicenses expires_before none", list_of="License") or []
    check(all(li.get("id") != lid for li in lst), "listLicenses expires_before includes a later license")
    lst = expect(M("GET", "/api/v1/licenses", query={"status": "revoked", "product_id": pid}), 200, "listLicenses status=revoked", list_of="License") or []
    check(all(li.get("status") == "revoked" for li in lst), "listLicenses status filter ignored")
    expect_error(M("GET", "/api/v1/licenses", query={"status": "bogus"}), 400, "listLicenses bad status")
    expect_error(M("GET", "/api/v1/licenses", query={"expires_before": "yesterday"}), 400, "listLicenses bad expires_before")
    expect_error(M("DELETE", f"/api/v1/customers/{cid}"), 409, "deleteCustomer in use")
    expect_error(M("DELETE", f"/api/v1/policies/{pol.get('id')}"), 409, "deletePolicy in use")
    expect_error(M("DELETE", f"/api/v1/products/{pid}"), 409, "deleteProduct in use")

    # license custom fields
    lv = expect(M("PUT", f"/api/v1/licenses/{lid}/custom-fields/{defs[('license', 'integer')]}", {"integer_value": 7}), 200,
                "upsertLicenseCustomFieldValue", "CustomFieldValue") or {}
    check(lv.get("integer_value") == 7 and lv.get("resource_type") == "license", f"license custom value: {lv}")
    expect_error(M("PUT", f"/api/v1/licenses/{lid}/custom-fields/{defs[('license', 'integer')]}", {"boolean_value": True}), 422,
                 "upsertLicenseCustomFieldValue wrong type")
    expect_error(M("PUT", f"/api/v1/licenses/does-not-exist/custom-fields/{defs[('license', 'integer')]}", {"integer_value": 1}), 404,
                 "upsertLicenseCustomFieldValue unknown license")
    lst = expect(M("GET", f"/api/v1/licenses/{lid}/custom-fields"), 200, "listLicenseCustomFieldValues", list_of="CustomFieldValue") or []
    check(len(lst) == 1, f"listLicenseCustomFieldValues: {lst}")
    expect(M("PUT", f"/api/v1/licenses/{lid}/custom-fields/{defs[('license', 'integer')]}", {"clear": True}), 204, "clear license value")
    expect_error(M("GET", "/api/v1/licenses/does-not-exist/custom-fields"), 404, "listLicenseCustomFieldValues unknown")

    # license features
    lf = expect(M("POST", f"/api/v1/licenses/{lid}/features", {"feature_id": feat.get("id"), "enabled": True, "max_consumptions": 3,
                                                               "metadata": {"m": 1}}), 200, "assignLicenseFeature", "LicenseFeature") or {}
    check(lf.get("max_consumptions") == 3 and lf.get("total_consumptions") == 0 and lf.get("remaining") == 3
          and lf.get("feature_code") == feat.get("code"), f"assignLicenseFeature: {lf}")
    expect(M("POST", f"/api/v1/licenses/{lid}/features", {"feature_id": feat2.get("id")}), 200, "assignLicenseFeature 2", "LicenseFeature")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/features", {"feature_id": "does-not-exist"}), 404, "assignLicenseFeature unknown feature")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/features", {"feature_id": feat.get("id"), "max_consumptions": -1}), 422,
                 "assignLicenseFeature negative max")
    lst = expect(M("GET", f"/api/v1/licenses/{lid}/features"), 200, "listLicenseFeatures", list_of="LicenseFeature") or []
    check(len(lst) == 2, f"listLicenseFeatures: {lst}")

    # ---------------- runtime
    fp = f"fp-{sfx}-a"
    bind = {"fingerprint": fp, "hostname": "host-a", "os": "linux", "app_version": "1.0.0"}
    expect_error(R("activate", key, bind), 400, "activate without Idempotency-Key")
    k1 = f"act-{sfx}-1"
    r1 = R("activate", key, bind, idem=k1)
    act = signed(r1, keys, "activate", "RuntimeEntitlementResponseData") or {}
    check(act.get("license_id") == lid and act.get("status") == "active" and act.get("license_type") == "time_limited",
          f"activate data: {act}")
    if act.get("issued_at") and act.get("next_check_at"):
        check(parse_dt(act["next_check_at"]) - parse_dt(act["issued_at"]) == timedelta(minutes=60),
              f"next_check_at is not issued_at + validation_interval_minutes: {act}")
    if act.get("expires_at"):
        check(parse_dt(act["expires_at"]) == parse_dt(lic_body["expires_at"]), f"activate expires_at: {act.get('expires_at')}")
    fcodes = {f.get("code"): f for f in act.get("features", [])}
    check(feat.get("code") in fcodes and fcodes[feat.get("code")].get("quota") == 3, f"activate features: {act.get('features')}")
    ve = act.get("version_eligibility") or {}
    check(ve.get("app_version") == "1.0.0" and ve.get("is_entitled") is True and ve.get("enforced") is True, f"version_eligibility: {ve}")
    r2 = R("activate", key, bind, idem=k1)
    check(r2.status == 200 and r2.raw == r1.raw, f"activate replay is not byte-identical: {r2!r}")
    expect_error(R("activate", key, bind | {"hostname": "other"}, idem=k1), 409, "activate same key different body")
    dev_id = act.get("device_id", "missing")
    expect_error(R("activate", key, {"fingerprint": "x", "mac": "y"}, idem=f"act-{sfx}-u"), 400, "activate unknown field")
    expect_error(R("activate", key, None, raw=b"{not json", idem=f"act-{sfx}-j"), 400, "activate bad JSON")
    expect_error(R("activate", key, {"fingerprint": 12}, idem=f"act-{sfx}-t"), 400, "activate wrong type")
    expect_error(R("activate", key, {"is_container": True}, idem=f"act-{sfx}-c"), 422, "activate container without identity")
    expect_error(R("activate", key, {"fingerprint": "fp-v", "app_version": "banana"}, idem=f"act-{sfx}-v"), 422, "activate non-semver app_version")
    expect_error(R("activate", key, {"fingerprint": f"fp-{sfx}-vm", "is_vm": True}, idem=f"act-{sfx}-vm"), 403, "activate VM", "VM_NOT_ALLOWED")
    r = R("activate", key, {"fingerprint": f"fp-{sfx}-b"}, idem=f"act-{sfx}-b")
    signed(r, keys, "activate second device", "RuntimeEntitlementResponseData")
    r = R("activate", key, {"is_container": True, "cluster_id": "c1", "namespace": "ns", "pod_name": "pod-1"}, idem=f"act-{sfx}-ctr")
    signed(r, keys, "activate container", "RuntimeEntitlementResponseData")
    expect_error(R("activate", key, {"fingerprint": f"fp-{sfx}-c"}, idem=f"act-{sfx}-c2"), 403, "activate over the limit", "ACTIVATION_LIMIT_REACHED")
    r = R("activate", key, bind, idem=f"act-{sfx}-again")
    d = signed(r, keys, "re-activate same device", "RuntimeEntitlementResponseData") or {}
    check(d.get("device_id") == dev_id, "re-activation of the same fingerprint changed device_id")

    for op in ("validate", "check"):
        d = signed(R(op, key, bind), keys, op, "RuntimeEntitlementResponseData") or {}
        check(d.get("device_id") == dev_id, f"{op} device_id {d.get('device_id')} != {dev_id}")
        expect_error(R(op, key, {"fingerprint": f"fp-{sfx}-unknown"}), 404, f"{op} unknown device")
        expect_error(R(op, key, {"fingerprint": fp, "zz": 1}), 400, f"{op} unknown field")
        expect_error(R(op, key, {"fingerprint": fp, "app_version": "x.y"}), 422, f"{op} non-semver")
    d = signed(R("check", key, bind | {"app_version": "2.0.0"}), keys, "check newer version", "RuntimeEntitlementResponseData") or {}
    check((d.get("version_eligibility") or {}).get("is_entitled") is True, f"time-limited license entitled to 2.0.0: {d}")

    # consume
    cons = {"fingerprint": fp, "feature_code": feat.get("code"), "amount": 2, "event_id": f"ev-{sfx}-1"}
    expect_error(R("consume", key, cons), 400, "consume without Idempotency-Key")
    r1 = R("consume", key, cons, idem=f"con-{sfx}-1")
    d = signed(r1, keys, "consume", "RuntimeEntitlementResponseData") or {}
    fc = {f.get("code"): f for f in d.get("features", [])}.get(feat.get("code"), {})
    check(fc.get("consumed") == 2 and fc.get("remaining") == 1, f"consume balances: {fc}")
    r2 = R("consume", key, cons, idem=f"con-{sfx}-1")
    check(r2.status == 200 and r2.raw == r1.raw, f"consume replay not byte-identical: {r2!r}")
    expect_error(R("consume", key, cons | {"amount": 1}, idem=f"con-{sfx}-1"), 409, "consume same key different body")
    expect_error(R("consume", key, cons | {"amount": 1}, idem=f"con-{sfx}-2"), 409, "consume event_id reused with a different amount")
    expect_error(R("consume", key, cons | {"event_id": f"ev-{sfx}-2"}, idem=f"con-{sfx}-3"), 403, "consume over quota", "QUOTA_EXCEEDED")
    expect_error(R("consume", key, cons | {"event_id": f"ev-{sfx}-4", "feature_code": feat3.get("code")}, idem=f"con-{sfx}-4"),
                 403, "consume unassigned feature", "FEATURE_NOT_ENTITLED")
    expect_error(R("consume", key, cons | {"event_id": f"ev-{sfx}-5", "amount": 0}, idem=f"con-{sfx}-5"), 422, "consume amount 0")
    expect_error(R("consume", key, cons | {"event_id": f"ev-{sfx}-6", "bogus": True}, idem=f"con-{sfx}-6"), 400, "consume unknown field")
    expect_error(R("consume", key, {"fingerprint": fp, "feature_code": feat.get("code")}, idem=f"con-{sfx}-7"), 400, "consume missing event_id")
    expect_error(R("consume", key, cons | {"fingerprint": f"fp-{sfx}-zz", "event_id": f"ev-{sfx}-8", "amount": 1}, idem=f"con-{sfx}-8"),
                 404, "consume unknown device")
    d = signed(R("consume", key, {"fingerprint": fp, "feature_code": feat.get("code"), "event_id": f"ev-{sfx}-9"}, idem=f"con-{sfx}-9"),
               keys, "consume default amount", "RuntimeEntitlementResponseData") or {}
    fc = {f.get("code"): f for f in d.get("features", [])}.get(feat.get("code"), {})
    check(fc.get("consumed") == 3 and fc.get("remaining") == 0, f"consume default amount 1: {fc}")
    li = expect(M("GET", f"/api/v1/licenses/{lid}"), 200, "getLicense after consume", "License") or {}
    check(li.get("total_consumptions") == 3, f"license total_consumptions {li.get('total_consumptions')}")
    check(li.get("active_device_count") == 3 and li.get("times_activated", 0) >= 3, f"license counters: {li}")

    # usage reset
    u = expect(M("POST", f"/api/v1/licenses/{lid}/usage/reset", {"feature_id": feat.get("id"), "reset_consumed": True}), 200,
               "resetLicenseUsage", "LicenseFeature") or {}
    check(u.get("total_consumptions") == 0 and u.get("remaining") == 3, f"usage reset: {u}")
    u = expect(M("POST", f"/api/v1/licenses/{lid}/usage/reset", {"feature_code": feat.get("code"), "add_credits": 2}), 200,
               "resetLicenseUsage add_credits", "LicenseFeature") or {}
    check(u.get("max_consumptions") == 5 and u.get("remaining") == 5, f"usage add_credits: {u}")
    u = expect(M("POST", f"/api/v1/licenses/{lid}/usage/reset", {"feature_id": feat.get("id"), "max_consumptions": 10, "total_consumptions": 4}), 200,
               "resetLicenseUsage set", "LicenseFeature") or {}
    check(u.get("max_consumptions") == 10 and u.get("total_consumptions") == 4 and u.get("remaining") == 6, f"usage set: {u}")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/usage/reset", {"feature_id": feat.get("id"), "feature_code": feat.get("code"), "reset_consumed": True}),
                 422, "resetLicenseUsage both selectors")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/usage/reset", {"feature_id": feat.get("id")}), 422, "resetLicenseUsage no mutation")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/usage/reset", {"feature_id": feat.get("id"), "add_credits": 0}), 422, "resetLicenseUsage add_credits 0")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/usage/reset", {"feature_id": feat3.get("id"), "reset_consumed": True}), 404,
                 "resetLicenseUsage unassigned feature")
    expect_error(M("POST", "/api/v1/licenses/does-not-exist/usage/reset", {"feature_id": feat.get("id"), "reset_consumed": True}), 404,
                 "resetLicenseUsage unknown license")

    # offline
    r = R("offline", key, bind)
    off = expect(r, 200, "offline", "OfflineEnvelope") or {}
    check("signature" not in (r.json or {}), "offline response is not {data, meta}")
    if off.get("salt"):
        salt, nonce, ct = (base64.b64decode(off[k], validate=True) for k in ("salt", "nonce", "ciphertext"))
        check(len(salt) == 32 and len(nonce) == 12, f"offline salt/nonce sizes {len(salt)}/{len(nonce)}")
        check(off.get("kid") in keys.by_kid, f"offline kid {off.get('kid')} not a public key")
        if HAVE_AESGCM:
            try:
                k = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"licentia-offline-v1").derive(key.encode())
                plain = AESGCM(k).decrypt(nonce, ct, off["kid"].encode("ascii"))
                inner = json.loads(plain)
                check(plain == json.dumps(inner, separators=(",", ":")).encode(), "offline plaintext is not compact JSON")
                check(list(inner.keys()) == ["data", "signature"], f"offline inner keys {list(inner)}")
                idata = inner.get("data", {})
                schema(idata, "RuntimeEntitlementResponseData", "offline inner data")
                keys.verify_data(idata, inner.get("signature"), "offline inner")
                check((inner.get("signature") or {}).get("kid") == off.get("kid"), "offline kid differs from inner signature kid")
                check(idata.get("binding_sha256") == hashlib.sha256(fp.encode()).hexdigest()
                      or re.match(r"^[0-9a-f]{64}$", str(idata.get("binding_sha256"))) is not None,
                      f"offline binding_sha256: {idata.get('binding_sha256')}")
                if idata.get("issued_at") and idata.get("offline_expires_at"):
                    check(parse_dt(idata["offline_expires_at"]) - parse_dt(idata["issued_at"]) == timedelta(days=7),
                          f"offline_expires_at is not issued_at + offline_grace_days: {idata}")
                else:
                    check(False, f"offline inner data lacks offline_expires_at: {idata}")
                try:
                    AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"licentia-offline-v1").derive(b"lsk_wrong"))\
                        .decrypt(nonce, ct, off["kid"].encode())
                    check(False, "offline envelope decrypts with a wrong key")
                except Exception:
                    pass
            except Exception as e:  # noqa: BLE001
                check(False, f"offline envelope does not decrypt per DESIGN 4.2: {e!r}")
        else:
            print("scenarios: note: `cryptography` missing, offline envelope decryption skipped")
    expect_error(R("offline", key, {"fingerprint": f"fp-{sfx}-nope"}), 404, "offline unknown device")
    expect_error(R("offline", key, {"fingerprint": fp, "q": 1}), 400, "offline unknown field")

    # deactivate (second device) then devices management
    dbind = {"fingerprint": f"fp-{sfx}-b"}
    expect_error(R("deactivate", key, dbind), 400, "deactivate without Idempotency-Key")
    r1 = R("deactivate", key, dbind, idem=f"de-{sfx}-1")
    dd = signed(r1, keys, "deactivate", "DeactivationResponseData") or {}
    r2 = R("deactivate", key, dbind, idem=f"de-{sfx}-1")
    check(r2.status == 200 and r2.raw == r1.raw, f"deactivate replay not byte-identical: {r2!r}")
    expect_error(R("deactivate", key, {"fingerprint": f"fp-{sfx}-q"}, idem=f"de-{sfx}-1"), 409, "deactivate same key different body")
    expect_error(R("deactivate", key, {"fingerprint": f"fp-{sfx}-never"}, idem=f"de-{sfx}-2"), 404, "deactivate unknown device")
    expect_error(R("validate", key, dbind), 404, "validate deactivated device")
    lst = expect(M("GET", f"/api/v1/licenses/{lid}/devices"), 200, "listLicenseDevices", list_of="Device") or []
    check(len(lst) >= 3, f"listLicenseDevices: {len(lst)}")
    lst1 = expect(M("GET", f"/api/v1/licenses/{lid}/devices", query={"limit": 1}), 200, "listLicenseDevices limit=1", list_of="Device") or []
    check(len(lst1) == 1, f"listLicenseDevices limit=1: {len(lst1)}")
    dv = expect(M("GET", f"/api/v1/licenses/{lid}/devices/{dev_id}"), 200, "getLicenseDevice", "Device") or {}
    check(dv.get("fingerprint") == fp and dv.get("binding_kind") == "hardware" and dv.get("status") == "active", f"device: {dv}")
    if dd.get("device_id"):
        dd_dev = expect(M("GET", f"/api/v1/licenses/{lid}/devices/{dd['device_id']}"), 200, "get deactivated device", "Device") or {}
        check(dd_dev.get("status") == "deactivated", f"deactivated device status: {dd_dev.get('status')}")
    if dd.get("device_id"):
        # a deactivated device can still be blacklisted (block future reuse), and stays listed
        bl = expect(M("POST", f"/api/v1/licenses/{lid}/devices/{dd['device_id']}/blacklist"), 200, "blacklist a deactivated device", "Device") or {}
        check(bl.get("status") == "blacklisted", f"blacklisted deactivated device: {bl.get('status')}")
        expect_error(R("activate", key, dbind, idem=f"act-{sfx}-dbl"), 403, "activate a blacklisted (was deactivated) device", "DEVICE_BLACKLISTED")
        bl = expect(M("POST", f"/api/v1/licenses/{lid}/devices/{dd['device_id']}/blacklist"), 200, "blacklist again", "Device") or {}
        check(bl.get("status") == "blacklisted", f"blacklist again: {bl.get('status')}")
    expect_error(M("GET", f"/api/v1/licenses/{lid}/devices/does-not-exist"), 404, "getLicenseDevice unknown")
    expect_error(M("GET", "/api/v1/licenses/does-not-exist/devices"), 404, "listLicenseDevices unknown license")
    rs = expect(M("POST", f"/api/v1/licenses/{lid}/devices/{dev_id}/reset"), 200, "resetLicenseDevice", "Device") or {}
    check(rs.get("status") == "reset", f"reset device status: {rs.get('status')}")
    expect_error(R("validate", key, bind), 404, "validate reset device")
    rs = expect(M("POST", f"/api/v1/licenses/{lid}/devices/{dev_id}/reset"), 200, "resetLicenseDevice again", "Device") or {}
    check(rs.get("status") == "reset", f"reset again status: {rs.get('status')}")
    r = R("activate", key, bind, idem=f"act-{sfx}-post-reset")
    d = signed(r, keys, "activate after reset", "RuntimeEntitlementResponseData") or {}
    new_dev = d.get("device_id", dev_id)
    bl = expect(M("POST", f"/api/v1/licenses/{lid}/devices/{new_dev}/blacklist"), 200, "blacklistLicenseDevice", "Device") or {}
    check(bl.get("status") == "blacklisted", f"blacklist status: {bl.get('status')}")
    expect_error(R("activate", key, bind, idem=f"act-{sfx}-bl"), 403, "activate blacklisted device", "DEVICE_BLACKLISTED")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/devices/does-not-exist/reset"), 404, "resetLicenseDevice unknown")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/devices/does-not-exist/blacklist"), 404, "blacklistLicenseDevice unknown")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/devices/{new_dev}/reset", token=lic_reader), 403, "reset device without device:write", "TOKEN_SCOPE_DENIED")

    # feature removal
    expect(M("DELETE", f"/api/v1/licenses/{lid}/features/{feat2.get('id')}"), 204, "removeLicenseFeature")
    expect_error(M("DELETE", f"/api/v1/licenses/{lid}/features/{feat2.get('id')}"), 404, "removeLicenseFeature again")

    # renew / transfer / lifecycle
    before = parse_dt(li.get("expires_at", iso(NOW)))
    expect_error(M("POST", f"/api/v1/licenses/{lid}/renew", {"extend_by_days": 10}), 400, "renew without Idempotency-Key")
    r1 = M("POST", f"/api/v1/licenses/{lid}/renew", {"extend_by_days": 10, "order_id": order.get("id")}, idem=f"ren-{sfx}-1")
    rn = expect(r1, 200, "renewLicense extend_by_days", "License") or {}
    if rn.get("expires_at"):
        check(parse_dt(rn["expires_at"]) - before == timedelta(days=10), f"renew extends from stored expiry: {before} -> {rn['expires_at']}")
    check(rn.get("order_id") == order.get("id") and rn.get("subscription_id") == sub.get("id"), f"renew rewrote origin linkage: {rn}")
    r2 = M("POST", f"/api/v1/licenses/{lid}/renew", {"extend_by_days": 10, "order_id": order.get("id")}, idem=f"ren-{sfx}-1")
    check(r2.status == 200 and r2.raw == r1.raw, f"renew replay not byte-identical: {r2!r}")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/renew", {"extend_by_days": 11}, idem=f"ren-{sfx}-1"), 409, "renew same key different body")
    target = iso(NOW + timedelta(days=100))
    rn = expect(M("POST", f"/api/v1/licenses/{lid}/renew", {"expires_at": target}, idem=f"ren-{sfx}-2"), 200, "renewLicense expires_at", "License") or {}
    check(rn.get("expires_at") and parse_dt(rn["expires_at"]) == parse_dt(target), f"renew expires_at: {rn.get('expires_at')}")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/renew", {"expires_at": target, "extend_by_days": 1}, idem=f"ren-{sfx}-3"), 422, "renew both fields")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/renew", {}, idem=f"ren-{sfx}-4"), 422, "renew no field")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/renew", {"extend_by_days": 0}, idem=f"ren-{sfx}-5"), 422, "renew extend_by_days 0")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/renew", {"extend_by_days": 1, "order_id": "does-not-exist"}, idem=f"ren-{sfx}-6"), 404,
                 "renew unknown order")
    expect_error(M("POST", "/api/v1/licenses/does-not-exist/renew", {"extend_by_days": 1}, idem=f"ren-{sfx}-7"), 404, "renew unknown license")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/renew", {"extend_by_days": "1"}, idem=f"ren-{sfx}-8"), 400, "renew wrong type")

    expect_error(M("POST", f"/api/v1/licenses/{lid}/transfer", {"customer_email": "new@x.test"}), 400, "transfer without Idempotency-Key")
    r1 = M("POST", f"/api/v1/licenses/{lid}/transfer", {"customer_id": cust2.get("id"), "customer_email": "new@beta.test",
                                                        "customer_name": "New", "reset_devices": True}, idem=f"tr-{sfx}-1")
    tr = expect(r1, 200, "transferLicense", "License") or {}
    check(tr.get("customer_id") == cust2.get("id") and tr.get("customer_email") == "new@beta.test" and tr.get("times_transferred") == 1
          and tr.get("active_device_count") == 0, f"transfer: {tr}")
    r2 = M("POST", f"/api/v1/licenses/{lid}/transfer", {"customer_id": cust2.get("id"), "customer_email": "new@beta.test",
                                                        "customer_name": "New", "reset_devices": True}, idem=f"tr-{sfx}-1")
    check(r2.status == 200 and r2.raw == r1.raw, f"transfer replay not byte-identical: {r2!r}")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/transfer", {"customer_name": "Other"}, idem=f"tr-{sfx}-1"), 409, "transfer same key different body")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/transfer", {}, idem=f"tr-{sfx}-2"), 422, "transfer empty")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/transfer", {"customer_id": "does-not-exist"}, idem=f"tr-{sfx}-3"), 404, "transfer unknown customer")
    tr = expect(M("POST", f"/api/v1/licenses/{lid}/transfer", {"customer_id": ""}, idem=f"tr-{sfx}-4"), 200, "transfer clear customer", "License") or {}
    check(not tr.get("customer_id"), f"transfer clear customer: {tr}")
    expect_error(M("POST", "/api/v1/licenses/does-not-exist/transfer", {"customer_name": "x"}, idem=f"tr-{sfx}-5"), 404, "transfer unknown license")

    r = R("activate", key, {"fingerprint": f"fp-{sfx}-s"}, idem=f"act-{sfx}-s")
    signed(r, keys, "activate before suspend", "RuntimeEntitlementResponseData")
    sp = expect(M("POST", f"/api/v1/licenses/{lid}/suspend"), 200, "suspendLicense", "License") or {}
    check(sp.get("status") == "suspended", f"suspend: {sp.get('status')}")
    sp = expect(M("POST", f"/api/v1/licenses/{lid}/suspend"), 200, "suspendLicense again", "License") or {}
    check(sp.get("status") == "suspended", f"suspend again: {sp.get('status')}")
    expect_error(R("validate", key, {"fingerprint": f"fp-{sfx}-s"}), 403, "validate suspended", "LICENSE_SUSPENDED")
    expect_error(R("activate", key, {"fingerprint": f"fp-{sfx}-s2"}, idem=f"act-{sfx}-s2"), 403, "activate suspended", "LICENSE_SUSPENDED")
    rs = expect(M("POST", f"/api/v1/licenses/{lid}/reinstate"), 200, "reinstateLicense", "License") or {}
    check(rs.get("status") == "active", f"reinstate: {rs.get('status')}")
    rs = expect(M("POST", f"/api/v1/licenses/{lid}/reinstate"), 200, "reinstateLicense again", "License") or {}
    signed(R("validate", key, {"fingerprint": f"fp-{sfx}-s"}), keys, "validate after reinstate", "RuntimeEntitlementResponseData")
    rv = expect(M("POST", f"/api/v1/licenses/{lid}/revoke"), 200, "revokeLicense", "License") or {}
    check(rv.get("status") == "revoked" and rv.get("active_device_count") == 0, f"revoke: {rv}")
    expect_error(R("validate", key, {"fingerprint": f"fp-{sfx}-s"}), 403, "validate revoked", "LICENSE_REVOKED")
    expect_error(R("activate", key, {"fingerprint": f"fp-{sfx}-r"}, idem=f"act-{sfx}-r"), 403, "activate revoked", "LICENSE_REVOKED")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/reinstate"), 409, "reinstate revoked")
    expect_error(M("POST", f"/api/v1/licenses/{lid}/suspend"), 409, "suspend revoked")
    for p in ("suspend", "reinstate", "revoke"):
        expect_error(M("POST", f"/api/v1/licenses/does-not-exist/{p}"), 404, f"{p} unknown license")

    # ---------------- floating, offline refusal, container, expiry, version gating
    fpol = expect(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Floating", "code": f"float-{sfx}", "license_type": "perpetual",
                                                                "max_floating_users": 1, "floating_timeout_minutes": 30,
                                                                "require_heartbeat": True, "max_activations": 5,
                                                                "allow_offline_activation": False, "allow_container": False}), 201, "createPolicy floating", "Policy") or {}
    fl = expect(M("POST", "/api/v1/licenses", {"product_id": pid, "policy_id": fpol.get("id"),
                                               "maintenance_expires_at": iso(NOW - timedelta(days=30))}), 201, "createLicense floating") or {}
    fkey = fl.get("license_key", "")
    schema(fl.get("license"), "License", "createLicense floating")
    fb = {"fingerprint": f"fl-{sfx}-1", "app_version": "1.0.0"}
    expect_error(R("floating/checkout", fkey, fb), 400, "checkout without Idempotency-Key")
    r1 = R("floating/checkout", fkey, fb, idem=f"co-{sfx}-1")
    co = signed(r1, keys, "floating checkout", "FloatingCheckoutResponseData") or {}
    r2 = R("floating/checkout", fkey, fb, idem=f"co-{sfx}-1")
    check(r2.status == 200 and r2.raw == r1.raw, f"checkout replay not byte-identical: {r2!r}")
    expect_error(R("floating/checkout", fkey, {"fingerprint": "other"}, idem=f"co-{sfx}-1"), 409, "checkout same key different body")
    expect_error(R("floating/checkout", fkey, {"fingerprint": f"fl-{sfx}-2"}, idem=f"co-{sfx}-2"), 403, "checkout pool exhausted",
                 "FLOATING_POOL_EXHAUSTED")
    expect_error(R("floating/checkout", fkey, {"fingerprint": f"fl-{sfx}-3", "app_version": "2.0.0"}, idem=f"co-{sfx}-3"), 403,
                 "checkout version after maintenance", "VERSION_NOT_ENTITLED")
    tok = co.get("lease_token", "missing")
    if co.get("issued_at") and co.get("lease_expires_at"):
        check(parse_dt(co["lease_expires_at"]) - parse_dt(co["issued_at"]) == timedelta(minutes=30),
              f"lease_expires_at is not issued_at + floating_timeout_minutes: {co}")
    hb = signed(R("floating/heartbeat", fkey, {"lease_token": tok}), keys, "floating heartbeat", "FloatingLeaseResponseData") or {}
    if hb.get("lease_expires_at") and co.get("lease_expires_at"):
        check(parse_dt(hb["lease_expires_at"]) >= parse_dt(co["lease_expires_at"]), "heartbeat shortened the lease")
    expect_error(R("floating/heartbeat", fkey, {"lease_token": "nope"}), 404, "heartbeat unknown lease")
    expect_error(R("floating/heartbeat", fkey, {}), 400, "heartbeat missing lease_token")
    expect_error(R("floating/heartbeat", fkey, {"lease_token": tok, "x": 1}), 400, "heartbeat unknown field")
    expect_error(R("floating/checkin", fkey, {"lease_token": tok}), 400, "checkin without Idempotency-Key")
    r1 = R("floating/checkin", fkey, {"lease_token": tok}, idem=f"ci-{sfx}-1")
    signed(r1, keys, "floating checkin", "FloatingLeaseResponseData")
    r2 = R("floating/checkin", fkey, {"lease_token": tok}, idem=f"ci-{sfx}-1")
    check(r2.status == 200 and r2.raw == r1.raw, f"checkin replay not byte-identical: {r2!r}")
    expect_error(R("floating/checkin", fkey, {"lease_token": "other"}, idem=f"ci-{sfx}-1"), 409, "checkin same key different body")
    expect_error(R("floating/checkin", fkey, {"lease_token": "nope"}, idem=f"ci-{sfx}-2"), 404, "checkin unknown lease")
    expect_error(R("floating/heartbeat", fkey, {"lease_token": tok}), 404, "heartbeat after checkin")
    signed(R("floating/checkout", fkey, {"fingerprint": f"fl-{sfx}-2"}, idem=f"co-{sfx}-4"), keys, "checkout after checkin",
           "FloatingCheckoutResponseData")
    # perpetual + maintenance: version gating on activate
    r = R("activate", fkey, {"fingerprint": f"fl-{sfx}-a", "app_version": "1.0.0"}, idem=f"act-{sfx}-m1")
    d = signed(r, keys, "activate entitled version", "RuntimeEntitlementResponseData") or {}
    ve = d.get("version_eligibility") or {}
    check(ve.get("is_entitled") is True and ve.get("enforced") is True, f"eligibility 1.0.0: {ve}")
    expect_error(R("check", fkey, {"fingerprint": f"fl-{sfx}-a", "app_version": "2.0.0"}), 403, "check version after maintenance",
                 "VERSION_NOT_ENTITLED")
    expect_error(R("offline", fkey, {"fingerprint": f"fl-{sfx}-a"}), 403, "offline not allowed by policy", "OFFLINE_NOT_ALLOWED")
    expect_error(R("activate", fkey, {"is_container": True, "pod_name": "p"}, idem=f"act-{sfx}-ctr2"), 403, "container not allowed",
                 "CONTAINER_NOT_ALLOWED")
    # expired time-limited license
    epol = expect(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Short", "code": f"short-{sfx}", "license_type": "time_limited",
                                                                "grace_period_days": 0}), 201, "createPolicy short", "Policy") or {}
    el = expect(M("POST", "/api/v1/licenses", {"product_id": pid, "policy_id": epol.get("id"), "starts_at": iso(NOW - timedelta(days=10)),
                                               "expires_at": iso(NOW - timedelta(days=1))}), 201, "createLicense expired") or {}
    expect_error(R("activate", el.get("license_key", ""), {"fingerprint": f"ex-{sfx}"}, idem=f"act-{sfx}-ex"), 403, "activate expired",
                 "LICENSE_EXPIRED")
    gpol = expect(M("POST", f"/api/v1/products/{pid}/policies", {"name": "Grace", "code": f"grace-{sfx}", "license_type": "time_limited",
                                                                "grace_period_days": 5}), 201, "createPolicy grace", "Policy") or {}
    gl = expect(M("POST", "/api/v1/licenses", {"product_id": pid, "policy_id": gpol.get("id"), "starts_at": iso(NOW - timedelta(days=10)),
                                               "expires_at": iso(NOW - timedelta(days=1))}), 201, "createLicense in grace") or {}
    r = R("activate", gl.get("license_key", ""), {"fingerprint": f"gr-{sfx}"}, idem=f"act-{sfx}-gr")
    d = signed(r, keys, "activate in grace period", "RuntimeEntitlementResponseData") or {}
    check(d.get("status") == "grace_period", f"license in grace reports status {d.get('status')}")
    gli = expect(M("GET", f"/api/v1/licenses/{(gl.get('license') or {}).get('id')}"), 200, "getLicense in grace", "License") or {}
    check(gli.get("status") in ("grace_period", "active"), f"management status of a license in grace: {gli.get('status')}")
    # JSON labelled otherwise by a client's default is still JSON
    r = c.call("POST", "/api/v1/products", None, bearer=admin, raw=json.dumps({"name": "Form", "code": f"form-{sfx}"}).encode(),
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    expect(r, 201, "createProduct with a form Content-Type", "Product")
    expect_error(c.call("POST", "/api/v1/products", None, bearer=admin, raw=b"name=x", headers={"Content-Type": "text/plain"}),
                 400, "createProduct non-JSON body")
    r = M("POST", f"/api/v1/licenses/{(gl.get('license') or {}).get('id')}/suspend", {})
    expect(r, 200, "suspendLicense with an empty JSON body", "License")
    # events for the floating license are recorded with actor license
    lid_f = (fl.get("license") or {}).get("id")

    # ---------------- events
    r = M("GET", "/api/v1/events", query={"limit": 5})
    ev = expect(r, 200, "listEvents", list_of="Event") or []
    pi = (r.json or {}).get("page_info")
    check(isinstance(pi, dict) and "next_cursor" in pi, f"listEvents page_info: {pi}")
    check(len(ev) == 5, f"listEvents limit=5 returned {len(ev)}")
    seqs = [e.get("sequence") for e in ev]
    check(seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs), f"events not newest-first: {seqs}")
    if isinstance(pi, dict) and pi.get("next_cursor") is not None:
        r = M("GET", "/api/v1/events", query={"limit": 5, "cursor": pi["next_cursor"]})
        ev2 = expect(r, 200, "listEvents cursor", list_of="Event") or []
        check(ev2 and all(e.get("sequence") < min(seqs) for e in ev2), f"cursor page not older: {[e.get('sequence') for e in ev2]}")
    else:
        check(False, "listEvents: no next_cursor with more events available")
    r = M("GET", "/api/v1/events", query={"limit": 200})
    allev = expect(r, 200, "listEvents limit=200", list_of="Event") or []
    types = {e.get("event_type") for e in allev}
    check(len(types) >= 5, f"few event types recorded: {types}")
    for e in allev:
        blob = json.dumps(e.get("metadata"))
        check(key not in blob and fkey not in blob, f"event metadata leaks a license key: {e}")
    if allev:
        et = allev[0].get("event_type")
        lst = expect(M("GET", "/api/v1/events", query={"event_type": et}), 200, "listEvents event_type", list_of="Event") or []
        check(lst and all(e.get("event_type") == et for e in lst), f"event_type filter: {et}")
    lst = expect(M("GET", "/api/v1/events", query={"resource_id": lid}), 200, "listEvents resource_id", list_of="Event") or []
    check(lst and all(e.get("resource_id") == lid for e in lst), "resource_id filter")
    lst = expect(M("GET", "/api/v1/events", query={"resource_type": "license"}), 200, "listEvents resource_type", list_of="Event") or []
    check(lst and all(e.get("resource_type") == "license" for e in lst), "resource_type filter")
    for at in ("api_key", "license"):
        lst = expect(M("GET", "/api/v1/events", query={"actor_type": at}), 200, f"listEvents actor_type={at}", list_of="Event") or []
        check(lst and all(e.get("actor_type") == at for e in lst), f"actor_type={at} filter: {len(lst)}")
    check(any(e.get("resource_id") == lid_f for e in allev) or True, "")
    r = M("GET", "/api/v1/events", query={"cursor": 1})
    expect(r, 200, "listEvents cursor=1", list_of="Event")
    check(r.data == [] and ((r.json or {}).get("page_info") or {}).get("next_cursor", 0) is None, f"last page: {r!r}")
    expect_error(M("GET", "/api/v1/events", query={"cursor": "abc"}), 400, "listEvents bad cursor")
    expect_error(M("GET", "/api/v1/events", query={"cursor": 0}), 400, "listEvents cursor=0")
    expect_error(M("GET", "/api/v1/events", query={"actor_type": "robot"}), 400, "listEvents bad actor_type")
    expect(M("GET", "/api/v1/events", token=lic_reader), 200, "event:read listEvents", list_of="Event")

    # ---------------- webhook delivery (DESIGN 4.3, 5): signed POSTs of new events
    received: list[tuple[dict, bytes]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            n = int(self.headers.get("Content-Length", "0"))
            received.append(({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()
    try:
        secret = "scenario-webhook-secret-0123456789"
        w = expect(M("POST", "/api/v1/webhooks", {"name": "receiver", "url": f"http://127.0.0.1:{hook_server.server_address[1]}/hook",
                                                  "secret": secret, "event_types": ["product.created"]}),
                   201, "createWebhookEndpoint receiver") or {}
        expect(M("POST", "/api/v1/products", {"name": "Hooked", "code": f"hooked-{sfx}"}), 201, "createProduct for webhook", "Product")
        expect(M("POST", "/api/v1/customers", {"name": "Not hooked", "code": f"nh-{sfx}"}), 201, "createCustomer not subscribed", "Customer")
        deadline = time.time() + 15
        while time.time() < deadline and not received:
            time.sleep(0.2)
        time.sleep(1.0)
        if check(len(received) >= 1, "no webhook delivery within 15 s of a product.created event"):
            hdrs, body = received[0]
            sig = hdrs.get("licentia-signature", "")
            m = re.match(r"^t=(\d+),v1=([0-9a-f]{64})$", sig)
            if check(m is not None, f"Licentia-Signature header malformed: {sig!r}"):
                want = hmac.new(secret.encode(), m.group(1).encode() + b"." + body, hashlib.sha256).hexdigest()
                check(hmac.compare_digest(want, m.group(2)), "Licentia-Signature does not verify")
                check(abs(int(m.group(1)) - time.time()) < 300, "Licentia-Signature timestamp is off")
            try:
                payload = json.loads(body)
                check("product.created" in json.dumps(payload), f"delivery does not carry the event type: {payload}")
            except ValueError:
                check(False, f"delivery body is not JSON: {body[:200]!r}")
            check(all(b"customer.created" not in b for _, b in received), "an unsubscribed event type was delivered")
            check(len(received) == 1, f"{len(received)} deliveries for one product.created event after the endpoint was created")
        expect(M("DELETE", f"/api/v1/webhooks/{(w.get('webhook') or {}).get('id')}"), 204, "deleteWebhookEndpoint receiver")
    finally:
        hook_server.shutdown()

    # ---------------- cleanup deletes of things no longer in use
    expect(M("DELETE", f"/api/v1/webhooks/{whid}"), 204, "deleteWebhookEndpoint 1")
    expect_error(M("GET", "/api/v1/nope"), 404, "unknown route")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    try:
        run(sys.argv[1].rstrip("/"), sys.argv[2])
    except Exception:  # noqa: BLE001
        FAILURES.append("scenario crashed:\n" + traceback.format_exc())
    if FAILURES:
        print(f"scenarios: {len(FAILURES)} FAILED of {CHECKS} checks")
        for f in FAILURES:
            print(" -", f)
        return 1
    print(f"scenarios: OK ({CHECKS} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
