#!/usr/bin/env python3
"""Creates the load benchmark's fixtures through the API (stdlib only).

Usage: fixtures.py URL ADMIN_TOKEN LICENSES KEYS_FILE

One product, a policy with room for every activation the run makes, a metered feature
(`units`, no quota) and LICENSES licenses, each with the feature assigned and the device
`load-dev` activated. Writes the license keys to KEYS_FILE, one per line.
"""
import json
import sys
import urllib.error
import urllib.request
import uuid


def call(url, token, method, path, body=None, auth="Bearer", idem=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", f"{auth} {token}")
    req.add_header("Content-Type", "application/json")
    if idem:
        req.add_header("Idempotency-Key", idem)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        sys.exit(f"fixtures: {method} {path} answered {e.code}: {e.read().decode()}")


def main():
    url, token, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    tag = uuid.uuid4().hex[:8]
    product = call(url, token, "POST", "/api/v1/products",
                   {"name": "Load", "code": f"load-{tag}"})["data"]
    policy = call(url, token, "POST", f"/api/v1/products/{product['id']}/policies", {
        "name": "Site", "code": "site", "license_type": "perpetual",
        "max_activations": 1000000,
    })["data"]
    feature = call(url, token, "POST", f"/api/v1/products/{product['id']}/features",
                   {"name": "Units", "code": "units"})["data"]
    keys = []
    for i in range(count):
        created = call(url, token, "POST", "/api/v1/licenses",
                       {"product_id": product["id"], "policy_id": policy["id"]})["data"]
        lic = created["license"]
        call(url, token, "POST", f"/api/v1/licenses/{lic['id']}/features",
             {"feature_id": feature["id"]})
        key = created["license_key"]
        call(url, key, "POST", "/api/v1/license/activate", {"fingerprint": "load-dev"},
             auth="License", idem=f"fixture-{i}")
        keys.append(key)
    with open(out, "w") as f:
        f.write("\n".join(keys) + "\n")


if __name__ == "__main__":
    main()
