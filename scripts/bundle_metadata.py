#!/usr/bin/env python3
"""The `metadata.json` of a kernel build variant, as the Python `kernels` package 0.17 reads it.

  bundle_metadata.py write VARIANT_DIR --name NAME --version N --arch ARCH [--license L]
      writes VARIANT_DIR/metadata.json: name, id, version, license, python-depends, backend
      (cuda, [ARCH]) and the per-file digest of every other file of the variant
  bundle_metadata.py check VARIANT_DIR
      exit 1, naming each file, when the digest does not match the files (as `kernels`' verify)
  bundle_metadata.py selftest
      the digest rule against the Python package's recorded test vector

Digest rule (kernels-data `Digest::hash_variant`): every regular file below the variant directory
except `metadata.json` / `metadata.json.sigstore` at its top, `*.pyc` and `__pycache__`; keys are
'/'-separated relative paths, sorted bytewise; values are padded standard base64 of SHA-256.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile

EXCLUDED_AT_TOP = ("metadata.json", "metadata.json.sigstore")


def variant_digest(variant_dir):
    files = {}
    for root, dirs, names in os.walk(variant_dir):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for n in names:
            path = os.path.join(root, n)
            rel = os.path.relpath(path, variant_dir).replace(os.sep, "/")
            if rel in EXCLUDED_AT_TOP or n.endswith(".pyc") or "__pycache__" in rel.split("/"):
                continue
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                files[rel] = base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
    return dict(sorted(files.items(), key=lambda kv: kv[0].encode()))


def write(variant_dir, name, version, arch, license_):
    digest = variant_digest(variant_dir)
    module = name.replace("-", "_")
    tag = hashlib.sha256(json.dumps(digest, sort_keys=True).encode()).hexdigest()[:7]
    meta = {
        "name": name,
        "id": f"_{module}_{tag}",
        "version": version,
        "license": license_,
        "python-depends": [],
        "backend": {"type": "cuda", "archs": [arch]},
        "digest": {"algorithm": "sha256", "files": digest},
    }
    text = json.dumps(meta, indent=2) + "\n"
    path = os.path.join(variant_dir, "metadata.json")
    if os.path.exists(path) and open(path).read() == text:
        return
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def check(variant_dir):
    with open(os.path.join(variant_dir, "metadata.json")) as f:
        expected = json.load(f)["digest"]
    problems = []
    if expected.get("algorithm") != "sha256":
        problems.append(f"Algorithm mismatch: expected {expected.get('algorithm')}, got sha256")
    actual = variant_digest(variant_dir)
    for path, value in expected.get("files", {}).items():
        if path not in actual:
            problems.append(f"Missing file: {path}")
        elif actual[path] != value:
            problems.append(f"File hash mismatch for {path}: expected: {value}, got: {actual[path]}")
    for path in actual:
        if path not in expected.get("files", {}):
            problems.append(f"Unknown file: {path}")
    for p in problems:
        print(p)
    print(f"{variant_dir}: {len(actual)} files, " + ("digest ok" if not problems else "digest MISMATCH"))
    return not problems


def selftest():
    with tempfile.TemporaryDirectory() as d:
        files = {"_ops.py": b"import torch\n", "sub/a.py": b"", "B.txt": b"B", "_.txt": b"under",
                 "metadata.json": b"{}", "__pycache__/x.pyc": b"\0"}
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "wb") as f:
                f.write(data)
        got = list(variant_digest(d).items())
    want = [("B.txt", "335w5QIVRPSDS77mSp43if68S+gUcN9inK1t2wMyClw="),
            ("_.txt", "12d0imA3mchTGdugKlg7P9viiuX4Ky6HLWu2bPEE5iw="),
            ("_ops.py", "uRo7xeIGTQJaiuEiVVyWlI7FtIldU9gJxLZrcaSRUTM="),
            ("sub/a.py", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")]
    print("selftest:", "ok" if got == want else f"MISMATCH {got}")
    return got == want


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("variant_dir")
    w.add_argument("--name", required=True)
    w.add_argument("--version", type=int, required=True)
    w.add_argument("--arch", required=True)
    w.add_argument("--license", default="MIT")
    c = sub.add_parser("check")
    c.add_argument("variant_dir")
    sub.add_parser("selftest")
    a = ap.parse_args()
    if a.cmd == "write":
        write(a.variant_dir, a.name, a.version, a.arch, a.license)
        return 0
    if a.cmd == "check":
        return 0 if check(a.variant_dir) else 1
    return 0 if selftest() else 1


if __name__ == "__main__":
    sys.exit(main())
