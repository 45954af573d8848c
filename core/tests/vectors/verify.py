#!/usr/bin/env python3
"""Independent check of the golden vectors, from DESIGN section 4 alone.

Needs Python 3 and the `cryptography` package (`pip install cryptography`).
Run from anywhere: python3 core/tests/vectors/verify.py
"""
import base64
import hashlib
import json
import pathlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = pathlib.Path(__file__).resolve().parent
b64 = base64.b64decode


def canonical(obj):
    # What every verifier can reproduce: compact separators, ensure_ascii (the default).
    return json.dumps(obj, separators=(",", ":"))


def verify(public_key, message, signature):
    Ed25519PublicKey.from_public_bytes(b64(public_key)).verify(b64(signature), message)


def main():
    failures = 0

    for v in json.loads((HERE / "signed.json").read_text()):
        sb = v["signed_bytes"]
        ok_canon = canonical(json.loads(sb)) == sb
        try:
            verify(v["public_key"], sb.encode("ascii"), v["signature"])
            ok_sig = True
        except InvalidSignature:
            ok_sig = False
        try:
            verify(v["public_key"], sb.encode("ascii") + b" ", v["signature"])
            ok_neg = False
        except InvalidSignature:
            ok_neg = True
        ok = ok_canon and ok_sig and ok_neg
        failures += not ok
        print(f"signed  {v['name']:28} canonical={ok_canon} signature={ok_sig} tamper-rejected={ok_neg}")

    for v in json.loads((HERE / "offline.json").read_text()):
        env = v["envelope"]
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b64(env["salt"]),
            info=b"licentia-offline-v1",
        ).derive(v["license_key"].encode("utf-8"))
        plaintext = AESGCM(key).decrypt(b64(env["nonce"]), b64(env["ciphertext"]), env["kid"].encode("ascii"))
        inner = json.loads(plaintext)
        data_bytes = canonical(inner["data"])
        sig = inner["signature"]
        ok_layout = plaintext.decode("ascii") == canonical(inner)
        ok_data = inner["data"] == v["data"] and data_bytes == canonical(v["data"])
        ok_kid = sig["alg"] == "Ed25519" and sig["kid"] == env["kid"] == v["kid"]
        try:
            verify(v["public_key"], data_bytes.encode("ascii"), sig["value"])
            ok_sig = True
        except InvalidSignature:
            ok_sig = False
        ok_binding = inner["data"]["binding_sha256"] == hashlib.sha256(v["binding_key"].encode("utf-8")).hexdigest()
        ok = ok_layout and ok_data and ok_kid and ok_sig and ok_binding
        failures += not ok
        print(
            f"offline {v['name']:28} layout={ok_layout} data={ok_data} kid={ok_kid} "
            f"signature={ok_sig} binding={ok_binding}"
        )

    print("FAILED" if failures else "all vectors verified")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
