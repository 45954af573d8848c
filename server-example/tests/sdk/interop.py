"""Drives licentia-server with the published, unmodified Open License Python SDK.

Usage: interop.py BASE_URL ADMIN_TOKEN

Management calls create a product, a floating-capable policy, a metered feature and a
license; runtime calls activate, validate, check, consume, check out / heartbeat / check in a
floating lease, fetch an offline envelope and deactivate. Every signed runtime response is
verified with the SDK's `verify_runtime_result` against the server's public key set. Exits
non-zero with a clear message on the first failure.
"""

from __future__ import annotations

import sys
import traceback
import uuid

from licensekit import (
    ApiError,
    ManagementClient,
    PublicKeyStore,
    RuntimeClient,
    SystemClient,
    verify_runtime_result,
)


class InteropFailure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise InteropFailure(message)


def main(base_url: str, token: str) -> None:
    suffix = uuid.uuid4().hex[:10]
    system = SystemClient(base_url=base_url, timeout=10)
    mgmt = ManagementClient(base_url=base_url, token=token, timeout=10)

    keys = system.list_public_keys()["data"]
    check(len(keys) >= 1, "the public key set is empty")
    check(all(k["algorithm"] == "Ed25519" for k in keys), f"unexpected key algorithms: {keys}")
    store = PublicKeyStore(keys)

    product = mgmt.create_product(body={"name": "Interop Editor", "code": f"interop-{suffix}"})["data"]
    policy = mgmt.create_policy(
        path={"id": product["id"]},
        body={
            "name": "Floating Pro",
            "code": f"floating-{suffix}",
            "license_type": "perpetual",
            "max_floating_users": 2,
            "floating_timeout_minutes": 30,
            "require_heartbeat": True,
        },
    )["data"]
    check(policy["max_floating_users"] == 2, f"policy not floating-capable: {policy}")
    # Every Policy field (an extension of the contract's create body).
    policy = mgmt.update_policy(
        path={"id": policy["id"]},
        body={"max_activations": 3, "allow_offline_activation": True, "offline_grace_days": 7},
    )["data"]
    feature = mgmt.create_feature(
        path={"id": product["id"]}, body={"name": "Exports", "code": "exports"}
    )["data"]
    created = mgmt.create_license(body={"product_id": product["id"], "policy_id": policy["id"]})["data"]
    license_id = created["license"]["id"]
    license_key = created["license_key"]
    mgmt.assign_license_feature(
        path={"id": license_id}, body={"feature_id": feature["id"], "max_consumptions": 100}
    )
    fetched = mgmt.get_license(path={"id": license_id})["data"]
    check(fetched["id"] == license_id, "get_license returned another license")
    listed = mgmt.list_licenses(query={"product_id": product["id"], "limit": 10})["data"]
    check([l["id"] for l in listed] == [license_id], f"list_licenses: {listed}")
    # Body-less POSTs (no Content-Type, empty body) and +00:00 query datetimes.
    mgmt.suspend_license(path={"id": license_id})
    mgmt.reinstate_license(path={"id": license_id})
    mgmt.list_licenses(query={"expires_after": "2026-01-01T00:00:00.123456+00:00"})

    runtime = RuntimeClient(base_url=base_url, license_key=license_key, timeout=10)
    device = {"fingerprint": f"interop-device-{suffix}", "hostname": "build-01", "app_version": "1.2.3"}
    verified = 0

    def signed(name: str, result: dict) -> dict:
        nonlocal verified
        check("signature" in result, f"{name}: response is not signed: {result}")
        outcome = verify_runtime_result(result, store)
        check(outcome.ok, f"{name}: signature did not verify (kid {result['signature'].get('kid')})")
        verified += 1
        return result["data"]

    activation_key = f"activate-{suffix}"
    first = runtime.activate_license(body=device, idempotency_key=activation_key)
    data = signed("activate", first)
    replay = runtime.activate_license(body=device, idempotency_key=activation_key)
    signed("activate replay", replay)
    check(replay == first, "an idempotent replay differs from the first response")
    try:
        runtime.activate_license(body={**device, "hostname": "other"}, idempotency_key=activation_key)
        raise InteropFailure("reusing an Idempotency-Key with another request did not fail")
    except ApiError as e:
        check(e.status == 409, f"idempotency conflict answered {e.status} {e.code}")

    signed("validate", runtime.validate_license(body=device))
    signed("check", runtime.check_license(body=device))
    consumed = signed(
        "consume",
        runtime.consume_license(
            body={**device, "feature_code": "exports", "amount": 2, "event_id": f"evt-{suffix}"},
            idempotency_key=f"consume-{suffix}",
        ),
    )
    check(isinstance(consumed, dict), "consume returned no data")

    lease = signed(
        "floating checkout",
        runtime.checkout_floating_license(body=device, idempotency_key=f"checkout-{suffix}"),
    )
    lease_token = lease["lease_token"]
    signed("floating heartbeat", runtime.heartbeat_floating_license(body={"lease_token": lease_token}))
    signed(
        "floating checkin",
        runtime.checkin_floating_license(body={"lease_token": lease_token}, idempotency_key=f"checkin-{suffix}"),
    )

    offline = runtime.issue_offline_license(body=device)
    envelope = offline["data"]
    for field in ("kid", "salt", "nonce", "ciphertext"):
        check(isinstance(envelope.get(field), str) and envelope[field], f"offline envelope lacks {field}")
    check(store.get(envelope["kid"]) is not None, "offline envelope names an unknown kid")

    signed("deactivate", runtime.deactivate_license(body=device, idempotency_key=f"deactivate-{suffix}"))

    try:
        runtime.validate_license(body={"fingerprint": f"never-activated-{suffix}"})
        raise InteropFailure("validating a device that was never activated did not fail")
    except ApiError as e:
        check(e.status in (403, 404), f"unexpected refusal {e.status} {e.code}")
        check(bool(e.request_id), "error envelope without meta.request_id")

    print(f"interop: OK ({verified} signed responses verified, data of last activation: {data['status']})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: interop.py BASE_URL ADMIN_TOKEN", file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1], sys.argv[2])
    except InteropFailure as e:
        print(f"interop: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except ApiError as e:
        print(
            f"interop: FAILED: HTTP {e.status} {e.code}: {e} (detail: {e.detail}, request {e.request_id})",
            file=sys.stderr,
        )
        traceback.print_exc()
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any other failure must fail the run loudly
        print(f"interop: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
