#!/usr/bin/env python3
"""Publish build variants into a local hub directory.

The directory uses the static mirror layout that `kernels` reads through HF_ENDPOINT=file:///DIR
(and that any static web server can serve under HF_ENDPOINT=http://host/...):

  api/kernels/<org>/<name>/refs                      branches (main, v<N>) -> commit
  api/kernels/<org>/<name>/revision/<rev>            {"id", "sha"} for main, v<N> and the commit
  api/kernels/<org>/<name>/tree/<commit>             recursive tree listing (Hub JSON, one page)
  kernels/<org>/<name>/resolve/<commit>/<path>       file bytes
  api/organizations/<org>/overview                   {"name", "trustedKernelPublisher": true}:
                                                     you publish it, so you vouch for it (the
                                                     trusted-publisher check of `kernels lock`);
                                                     --untrusted writes false instead

Binary files (.cubin, .fatbin, .so) are described as LFS files (lfs.oid = sha256 of the content),
everything else as regular git blobs (oid = git blob sha1), as the Hub does. The commit id is
derived from the content, so publishing the same files twice gives the same commit.

Usage:
  publish_local_hub.py --hub DIR --repo org/name --version 1 VARIANT_DIR [VARIANT_DIR ...]
Each VARIANT_DIR is copied to build/<basename of VARIANT_DIR>/ in the repo.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile

LFS_SUFFIXES = (".cubin", ".fatbin", ".so", ".bin")
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (hashlib.sha256(data).hexdigest(), len(data))).encode()


def write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".publish-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def collect_files(variant_dirs):
    files = {}
    for vdir in variant_dirs:
        vdir = os.path.abspath(vdir)
        if not os.path.isdir(vdir):
            sys.exit(f"publish_local_hub: {vdir}: not a directory")
        variant = os.path.basename(vdir.rstrip("/"))
        for root, _, names in os.walk(vdir):
            for name in names:
                full = os.path.join(root, name)
                rel = os.path.relpath(full, vdir).replace(os.sep, "/")
                with open(full, "rb") as f:
                    files[f"build/{variant}/{rel}"] = f.read()
    return files


def tree_listing(files):
    entries, dirs = [], set()
    for path in sorted(files, key=lambda p: p.encode()):
        parts = path.split("/")
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    for d in dirs:
        entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                        "size": 0, "path": d})
    for path, data in files.items():
        if path.endswith(LFS_SUFFIXES):
            pointer = lfs_pointer(data)
            entries.append({"type": "file", "oid": git_blob_sha1(pointer), "size": len(data),
                            "path": path,
                            "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": len(pointer)}})
        else:
            entries.append({"type": "file", "oid": git_blob_sha1(data), "size": len(data),
                            "path": path})
    entries.sort(key=lambda e: e["path"].encode())
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hub", required=True, help="local hub directory (created if missing)")
    ap.add_argument("--repo", required=True, help="repo id, org/name")
    ap.add_argument("--version", type=int, required=True, help="publish as branch v<N>")
    ap.add_argument("--untrusted", action="store_true",
                    help="mark the organisation as not a trusted kernel publisher")
    ap.add_argument("variant_dirs", nargs="+", help="variant directories to publish under build/")
    args = ap.parse_args()
    if not REPO_ID.match(args.repo) or ".." in args.repo:
        sys.exit(f"publish_local_hub: {args.repo!r} is not a repo id of the form org/name")
    if args.version < 0:
        sys.exit("publish_local_hub: --version must be >= 0")

    files = collect_files(args.variant_dirs)
    files["README.md"] = (f"# {args.repo}\n\nAttention kernels published by publish_local_hub.py "
                          f"as version {args.version}.\n").encode()
    entries = tree_listing(files)
    commit = hashlib.sha1(json.dumps(entries, sort_keys=True).encode()).hexdigest()

    api = os.path.join(args.hub, "api", "kernels", *args.repo.split("/"))
    resolve = os.path.join(args.hub, "kernels", *args.repo.split("/"), "resolve", commit)
    for path, data in files.items():
        write_atomic(os.path.join(resolve, *path.split("/")), data)
    write_atomic(os.path.join(api, "tree", commit), json.dumps(entries).encode())

    refs_path = os.path.join(api, "refs")
    branches = {}
    if os.path.exists(refs_path):
        with open(refs_path) as f:
            branches = {b["name"]: b["targetCommit"] for b in json.load(f).get("branches", [])}
    branches["main"] = commit
    branches[f"v{args.version}"] = commit
    refs = {"branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
                         for n, c in sorted(branches.items())],
            "converts": [], "tags": []}
    for rev in list(branches) + [commit]:
        sha = branches.get(rev, commit)
        write_atomic(os.path.join(api, "revision", rev),
                     json.dumps({"id": args.repo, "sha": sha, "private": False}).encode())
    write_atomic(refs_path, json.dumps(refs).encode())
    org = args.repo.split("/")[0]
    write_atomic(os.path.join(args.hub, "api", "organizations", org, "overview"),
                 json.dumps({"name": org, "trustedKernelPublisher": not args.untrusted}).encode())
    print(f"published {args.repo} v{args.version} at {commit} "
          f"({len(files)} files) into {os.path.abspath(args.hub)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
