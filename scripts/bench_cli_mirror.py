#!/usr/bin/env python3
"""Writes a static Hub mirror (the layout in cli/hub/hub_client.h) holding one benchmark repo.

  bench_cli_mirror.py DIR [--repo org/name] [--files 300] [--total-mib 1024]

Only torch variants (so the Python `kernels` CLI, which hashes build/torch* alone, accepts every
variant in `download --all-variants`). A third of the files are large LFS files (.so) that carry
almost all the bytes; the rest are small git blobs (.py). Content is random; the commit id is
derived from the listing. Prints the commit.
"""
import argparse
import hashlib
import json
import os


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--repo", default="bench/attention")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--total-mib", type=int, default=1024)
    args = ap.parse_args()

    variants = ["torch210-cxx11-cu128-x86_64-linux", "torch210-cxx11-cu130-x86_64-linux",
                "torch29-cxx11-cu126-x86_64-linux", "torch29-cxx11-cu128-x86_64-linux"]
    large = args.files // 3
    small = args.files - large
    small_size = 16 * 1024
    large_size = (args.total_mib * 1024 * 1024 - small * small_size) // large
    files = []
    for i in range(args.files):
        variant = variants[i % len(variants)]
        if i < large:
            files.append((f"build/{variant}/_attention_cuda_{i:03d}.abi3.so", large_size, True))
        else:
            files.append((f"build/{variant}/module_{i:03d}.py", small_size, False))

    entries = []
    contents = {}
    dirs = sorted({"build"} | {"build/" + v for v in variants})
    for d in dirs:
        entries.append({"type": "directory", "oid": git_sha1(d.encode()), "size": 0, "path": d})
    for path, size, lfs in files:
        data = os.urandom(size)
        contents[path] = data
        entry = {"type": "file", "size": size, "path": path}
        if lfs:
            sha = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n".encode()
            entry["oid"] = git_sha1(pointer)
            entry["lfs"] = {"oid": sha, "size": size, "pointerSize": len(pointer)}
        else:
            entry["oid"] = git_sha1(data)
        entries.append(entry)
    entries.sort(key=lambda e: e["path"])
    listing = json.dumps(entries)
    commit = hashlib.sha1((args.repo + listing).encode()).hexdigest()

    api = os.path.join(args.dir, "api/kernels", args.repo)
    os.makedirs(os.path.join(api, "revision"), exist_ok=True)
    os.makedirs(os.path.join(api, "tree"), exist_ok=True)
    with open(os.path.join(api, "tree", commit), "w") as f:
        f.write(listing)
    refs = {"branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": commit} for n in ("main", "v1")],
            "converts": [], "tags": []}
    with open(os.path.join(api, "refs"), "w") as f:
        json.dump(refs, f)
    for rev in ("main", "v1", commit):
        with open(os.path.join(api, "revision", rev), "w") as f:
            json.dump({"id": args.repo, "sha": commit}, f)
    for path, data in contents.items():
        target = os.path.join(args.dir, "kernels", args.repo, "resolve", commit, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
    print(commit)


if __name__ == "__main__":
    main()
