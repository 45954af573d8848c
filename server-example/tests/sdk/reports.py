"""Calls the published SDK's twelve reporting and ops operations against licentia-server.

Usage: reports.py BASE_URL ADMIN_TOKEN

Seeds activity through the SDK (two licenses of one product, one with a customer, an order
and a subscription; consumptions and a credit on two features; refusals: an unknown key, a
suspended license, an activation over the limit), then checks every number the reports give
against what it did: usage sums and groups, the ledger's rows and paging, the activity feed's
filters, the license audit, the customer summary, the settlement, the runtime error groups,
the ops summary, webhook health, and exports in JSON, CSV and PDF (and one that fails).
It also checks the scopes: a token without `report:read` is refused. Exits non-zero with a
clear message on the first failure.
"""

from __future__ import annotations

import csv
import io
import sys
import time
import traceback
import uuid

from licensekit import ApiError, ManagementClient, RuntimeClient


class ReportsFailure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ReportsFailure(message)


def refused(call, status: int, what: str) -> ApiError:
    try:
        call()
    except ApiError as e:
        check(e.status == status, f"{what}: expected {status}, got {e.status} {e.code}")
        return e
    raise ReportsFailure(f"{what}: expected {status}, got success")


def eventually(fetch, ready, what: str, seconds: float = 20.0):
    """Polls `fetch` until `ready(value)` (background work: flushes, exports)."""
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if ready(value):
            return value
        if time.monotonic() > deadline:
            raise ReportsFailure(f"{what}: not ready after {seconds} s: {value}")
        time.sleep(0.2)


def main(base_url: str, token: str) -> None:
    suffix = uuid.uuid4().hex[:10]
    mgmt = ManagementClient(base_url=base_url, token=token, timeout=10)

    product = mgmt.create_product(body={"name": "Reports", "code": f"reports-{suffix}"})["data"]
    pid = product["id"]
    policy = mgmt.create_policy(
        path={"id": pid},
        body={"name": "Two seats", "code": f"two-{suffix}", "license_type": "perpetual",
              "max_activations": 2},
    )["data"]
    export_f = mgmt.create_feature(path={"id": pid}, body={"name": "Export", "code": "export"})["data"]
    render_f = mgmt.create_feature(path={"id": pid}, body={"name": "Render", "code": "render"})["data"]
    customer = mgmt.create_customer(body={"name": "Acme", "code": f"acme-{suffix}"})["data"]
    cid = customer["id"]
    sub = mgmt.create_subscription(
        path={"id": pid},
        body={"external_system": "shop", "external_id": f"sub-{suffix}", "status": "active",
              "customer_id": cid, "current_period_start": "2026-01-01T00:00:00Z",
              "current_period_end": "2027-01-01T00:00:00Z"},
    )["data"]
    order = mgmt.create_order(
        path={"id": pid},
        body={"external_system": "shop", "external_id": f"ord-{suffix}", "status": "paid",
              "customer_id": cid, "subscription_id": sub["id"]},
    )["data"]

    def new_license(**extra) -> tuple[str, str]:
        created = mgmt.create_license(body={"product_id": pid, "policy_id": policy["id"], **extra})["data"]
        lid = created["license"]["id"]
        for f in (export_f, render_f):
            mgmt.assign_license_feature(
                path={"id": lid},
                body={"feature_id": f["id"], "max_consumptions": 1000, "allow_negative": True},
            )
        return lid, created["license_key"]

    acme_id, acme_key = new_license(customer_id=cid, order_id=order["id"], subscription_id=sub["id"])
    solo_id, solo_key = new_license()

    def consume(key: str, fp: str, feature: str, amount: int, n: int) -> None:
        RuntimeClient(base_url=base_url, license_key=key, timeout=10).consume_license(
            body={"fingerprint": fp, "feature_code": feature, "amount": amount,
                  "event_id": f"{suffix}-{n}"},
            idempotency_key=f"consume-{suffix}-{n}",
        )

    acme = RuntimeClient(base_url=base_url, license_key=acme_key, timeout=10)
    solo = RuntimeClient(base_url=base_url, license_key=solo_key, timeout=10)
    for n, fp in enumerate(["acme-1", "acme-2"]):
        acme.activate_license(body={"fingerprint": fp, "app_version": "2.4.1"}, idempotency_key=f"a-{suffix}-{n}")
    solo.activate_license(body={"fingerprint": "solo-1"}, idempotency_key=f"s-{suffix}")
    consume(acme_key, "acme-1", "export", 5, 1)
    consume(acme_key, "acme-2", "export", 7, 2)
    consume(acme_key, "acme-1", "render", 3, 3)
    consume(acme_key, "acme-1", "export", -2, 4)  # a credit
    consume(solo_key, "solo-1", "export", 11, 5)

    # Refusals: an activation over the limit (403), an unknown key (401), a suspended license.
    refused(lambda: acme.activate_license(body={"fingerprint": "acme-3", "app_version": "2.4.1"},
                                          idempotency_key=f"a-{suffix}-3"), 403, "third seat")
    stranger = RuntimeClient(base_url=base_url, license_key="LK-" + "A" * 40, timeout=10)
    refused(lambda: stranger.validate_license(body={"fingerprint": "x"}), 401, "unknown key")
    mgmt.suspend_license(path={"id": solo_id})
    refused(lambda: solo.validate_license(body={"fingerprint": "solo-1"}), 403, "suspended")
    refused(lambda: solo.validate_license(body={"fingerprint": "solo-1"}), 403, "suspended again")

    # ---- usage summary
    summary = mgmt.get_usage_summary(query={"product_id": pid, "group_by": "feature_code"})["data"]
    groups = {g["feature_code"]: g for g in summary["groups"]}
    check(summary["totals"] == {"units": 24, "consumed": 26, "credited": 2, "events": 5},
          f"usage totals: {summary['totals']}")
    check(groups["export"]["units"] == 21 and groups["export"]["events"] == 4, f"export usage: {groups}")
    check(groups["render"]["units"] == 3, f"render usage: {groups}")
    check([g["feature_code"] for g in summary["groups"]] == ["export", "render"], "groups by units, largest first")
    by_customer = mgmt.get_usage_summary(query={"product_id": pid, "group_by": "customer_id", "bucket": "1d"})["data"]
    units = {g.get("customer_id"): g["units"] for g in by_customer["groups"]}
    check(units == {cid: 13, None: 11}, f"usage by customer: {by_customer}")
    check(all("bucket_start" in g for g in by_customer["groups"]), "bucketed groups name their bucket")
    refused(lambda: mgmt.get_usage_summary(query={"group_by": "colour"}), 400, "unknown group_by")

    # ---- usage ledger, paged by two
    rows, cursor = [], None
    while True:
        q = {"product_id": pid, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = mgmt.list_usage_ledger(query=q)
        rows += page["data"]
        cursor = page["page_info"]["next_cursor"]
        if cursor is None:
            break
    check([r["amount"] for r in rows] == [11, -2, 3, 7, 5], f"ledger, newest first: {rows}")
    check([r["action"] for r in rows][:2] == ["consume", "credit"], "ledger actions")
    check(rows[1]["customer_id"] == cid and rows[1]["subscription_id"] == sub["id"], f"ledger ids: {rows[1]}")
    credits = mgmt.list_usage_ledger(query={"product_id": pid, "action": "credit"})["data"]
    check([r["amount"] for r in credits] == [-2], f"credits only: {credits}")

    # ---- activities
    acts = mgmt.list_activities(query={"license_id": acme_id, "action": "usage.consumed"})["data"]
    check(len(acts) == 4, f"four consumptions on the acme license: {acts}")
    check(all(a["product_id"] == pid and a["customer_id"] == cid for a in acts), f"activity subjects: {acts[0]}")
    check(all(a["result_class"] == "success" for a in acts), "activities are successes")
    check(mgmt.list_activities(query={"feature_code": "render", "product_id": pid})["data"][0]["action"]
          == "usage.consumed", "feature filter")
    first = mgmt.list_activities(query={"product_id": pid, "limit": 1})
    check(len(first["data"]) == 1 and first["page_info"]["next_cursor"] is not None, "activity paging")
    check(mgmt.list_activities(query={"result_class": "denied"})["data"] == [], "no denied activities")

    # ---- license audit, customer summary, settlement
    audit = mgmt.get_license_audit_report(query={"license_id": acme_id})["data"]
    check(audit["license"]["id"] == acme_id, "audit names its license")
    check(len(audit["devices"]) == 2, f"audit devices: {audit['devices']}")
    check(audit["usage"]["totals"]["units"] == 13, f"audit usage: {audit['usage']}")
    check(any(a["action"] == "device.activated" for a in audit["activity"]), "audit activity")
    refused(lambda: mgmt.get_license_audit_report(query={}), 400, "audit without license_id")
    refused(lambda: mgmt.get_license_audit_report(query={"license_id": "lic_" + "z" * 26}), 404, "audit of no license")

    cust = mgmt.get_customer_summary(query={"customer_id": cid})["data"]
    check(cust["licenses"]["total"] == 1 and cust["licenses"]["by_status"] == {"active": 1}, f"customer licenses: {cust}")
    check(cust["licenses"]["items"][0]["units"] == 13, f"customer license units: {cust['licenses']}")
    check(cust["usage"]["by_product"]["totals"]["units"] == 13, f"customer usage: {cust['usage']}")

    settle = mgmt.get_subscription_settlement(query={"subscription_id": sub["id"]})["data"]
    check(settle["subscription"]["id"] == sub["id"], "settlement names its subscription")
    check(settle["licenses"]["ids"] == [acme_id], f"settlement licenses: {settle['licenses']}")
    check({g["feature_code"]: g["units"] for g in settle["usage"]["groups"]} == {"export": 10, "render": 3},
          f"settlement usage: {settle['usage']}")
    by_order = mgmt.get_subscription_settlement(query={"order_id": order["id"], "group_by": "license_id"})["data"]
    check(by_order["usage"]["totals"]["units"] == 13, f"settlement by order: {by_order}")
    refused(lambda: mgmt.get_subscription_settlement(query={}), 400, "settlement of nothing")

    # ---- runtime errors (counted in memory, written within about a second)
    def errors():
        return mgmt.list_runtime_error_groups(query={"product_id": pid, "group_by": "reason_code,endpoint"})["data"]

    grouped = eventually(errors, lambda d: d["total"] >= 3, "runtime error groups")
    counts = {(g["reason_code"], g["endpoint"]): g["count"] for g in grouped["groups"]}
    check(counts == {("LICENSE_SUSPENDED", "validate"): 2, ("ACTIVATION_LIMIT_REACHED", "activate"): 1},
          f"runtime errors of the product: {counts}")
    everything = eventually(
        lambda: mgmt.list_runtime_error_groups(query={"group_by": "result_class", "endpoint": "validate"})["data"],
        lambda d: any(g.get("result_class") == "unauthorized" for g in d["groups"]),
        "unknown-key refusal",
    )
    check(any(g["result_class"] == "denied" and g["count"] >= 2 for g in everything["groups"]), f"{everything}")
    versions = mgmt.list_runtime_error_groups(query={"app_version": "2.4.1"})["data"]
    check(versions["total"] >= 1, f"refusals by app_version: {versions}")
    refused(lambda: mgmt.list_runtime_error_groups(query={"bucket": "7m"}), 400, "unknown bucket")

    # ---- ops summary and webhook health
    ops = mgmt.get_ops_summary(query={"product_id": pid})["data"]
    check(ops["usage"]["units"] == 24, f"ops usage: {ops['usage']}")
    check(ops["runtime_errors"]["by_result_class"].get("denied") == 3, f"ops refusals: {ops['runtime_errors']}")
    hook = mgmt.create_webhook_endpoint(body={"name": "ops", "url": "https://hooks.example.com/x"})["data"]
    health = mgmt.get_webhook_health(query={})["data"]
    check(any(e["id"] == hook["webhook"]["id"] for e in health["endpoints"]), f"webhook health: {health}")
    check(health["summary"]["endpoints"] >= 1, f"webhook summary: {health['summary']}")

    # ---- exports
    def ready_export(body: dict) -> dict:
        created = mgmt.create_report_export(body=body)["data"]
        check(created["status"] in ("pending", "ready"), f"a new export: {created}")
        check(created["download_url"].endswith(f"/{created['id']}/download"), "download_url")
        return eventually(lambda: mgmt.get_report_export(path={"id": created["id"]})["data"],
                          lambda e: e["status"] != "pending", f"export {created['id']}")

    csv_export = ready_export({"report_kind": "usage-ledger", "format": "csv", "filters": {"product_id": pid}})
    check(csv_export["status"] == "ready" and len(csv_export["artifact_digest"]) == 64, f"{csv_export}")
    raw = mgmt.raw.download_report_export(path={"id": csv_export["id"]})
    check(raw.headers["content-type"].startswith("text/csv"), f"csv media type: {raw.headers}")
    table = list(csv.DictReader(io.StringIO(raw.data.decode())))
    check(sorted(int(r["amount"]) for r in table) == [-2, 3, 5, 7, 11], f"csv ledger rows: {table}")

    json_export = ready_export({"report_kind": "usage-summary",
                                "filters": {"product_id": pid, "group_by": "feature_code"}})
    import json as _json
    frozen = _json.loads(mgmt.download_report_export(path={"id": json_export["id"]}))
    check(frozen["totals"]["units"] == 24, f"json export: {frozen}")

    pdf_export = ready_export({"report_kind": "customer-summary", "format": "pdf", "filters": {"customer_id": cid}})
    pdf = mgmt.download_report_export(path={"id": pdf_export["id"]})
    check(pdf.startswith(b"%PDF-"), "a PDF")

    failed = ready_export({"report_kind": "license-audit", "filters": {"license_id": "lic_" + "q" * 26}})
    check(failed["status"] == "failed" and "no longer exists" in failed.get("error", ""), f"failed export: {failed}")
    refused(lambda: mgmt.download_report_export(path={"id": failed["id"]}), 409, "download of a failed export")
    refused(lambda: mgmt.create_report_export(body={"report_kind": "usage-summary", "filters": {"bucket": "2h"}}),
            400, "export with a bad filter")
    refused(lambda: mgmt.get_report_export(path={"id": "rpx_" + "z" * 26}), 404, "unknown export")

    # ---- scopes
    reader = mgmt.create_api_key(body={"name": "reports", "scopes": ["report:read"]})["data"]
    as_reader = ManagementClient(base_url=base_url, token=reader["token"], timeout=10)
    check(as_reader.get_usage_summary(query={"product_id": pid})["data"]["totals"]["units"] == 24, "report:read reads")
    refused(lambda: as_reader.get_ops_summary(query={}), 403, "ops without ops:read")
    refused(lambda: as_reader.create_report_export(body={"report_kind": "usage-summary"}), 403,
            "export without report:export")
    plain = mgmt.create_api_key(body={"name": "products", "scopes": ["product:read"]})["data"]
    as_plain = ManagementClient(base_url=base_url, token=plain["token"], timeout=10)
    refused(lambda: as_plain.list_activities(query={}), 403, "activities without report:read")

    # ---- every parameter of the twelve, with odd values: never a 5xx, always an error envelope
    import httpx
    doc = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    odd = ["", "x", "-1", "0", "99999999999999999999", "1970-01-01T00:00:00Z", "2026-13-45T99:00:00Z",
           "product_id,,feature_code", "time,nope", "\u00e9\u00e8", "5m", "1d", "consume", pid]
    swept = 0
    for path, item in doc["paths"].items():
        if not (path.startswith("/api/v1/reports") or path.startswith("/api/v1/ops")
                or path == "/api/v1/activities"):
            continue
        for method, op in item.items():
            if method != "get" or "{id}" in path:
                continue
            names = []
            for p in op.get("parameters", []):
                if "$ref" in p:
                    p = doc["components"]["parameters"][p["$ref"].split("/")[-1]]
                if p.get("in") == "query":
                    names.append(p["name"])
            for name in names:
                for value in odd:
                    r = httpx.get(f"{base_url}{path}", params={name: value},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
                    swept += 1
                    check(r.status_code < 500, f"GET {path}?{name}={value!r}: {r.status_code} {r.text[:200]}")
                    if r.status_code >= 400:
                        check("error" in r.json(), f"GET {path}?{name}={value!r}: no error envelope")
    check(swept > 300, f"the parameter sweep ran ({swept} requests)")

    print(f"reports: OK (12 operations checked against the seeded activity, {swept} odd parameters)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: reports.py BASE_URL ADMIN_TOKEN", file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1], sys.argv[2])
    except ReportsFailure as e:
        print(f"reports: FAILED: {e}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    except ApiError as e:
        print(f"reports: FAILED: HTTP {e.status} {e.code}: {e} (detail: {e.detail})", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
