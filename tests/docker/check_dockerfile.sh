#!/usr/bin/env bash
# The Dockerfile's production properties, read from its text (no Docker engine needed, so it runs
# on CI; e2e:docker_build checks the built image where an engine answers). Each failure names the
# property. Usage: tests/docker/check_dockerfile.sh [DOCKERFILE]
set -euo pipefail
root="${KERNELS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
python3 - "${1:-$root/Dockerfile}" "$root" <<'PY'
import re, sys
path, root = sys.argv[1], sys.argv[2]
text = open(path).read()
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)

# Instructions, with continuation lines joined and comments dropped.
instructions, buf = [], ""
for line in text.splitlines():
    if not buf and line.lstrip().startswith("#"):
        continue
    if line.rstrip().endswith("\\"):
        buf += line.rstrip()[:-1] + " "
        continue
    buf += line
    if buf.strip():
        word, _, rest = buf.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
    buf = ""
stages, current = [], None
for word, rest in instructions:
    if word == "FROM":
        current = {"from": rest, "steps": []}
        stages.append(current)
    elif current is not None:
        current["steps"].append((word, rest))

# The engine's built-in Dockerfile frontend (Docker 20.10+) has cache and secret mounts; a
# `# syntax=` line would make every build pull a frontend image, which an air-gapped builder
# cannot (docs/DOCKER.md: the run on an engine without registry access).
need(not re.match(r"\s*#\s*syntax\s*=", text, re.I),
     "no `# syntax=` directive: the engine's built-in frontend builds it, with no frontend image to pull")
need(len(stages) >= 2, "a multi-stage build (build and runtime stages)")

# Dependency layers before source layers.
flat = [(w, r) for s in stages for (w, r) in s["steps"]]
copy_all = next((i for i, (w, r) in enumerate(flat) if w == "COPY" and re.match(r"^(--\S+\s+)*\.\s+\S+$", r)), None)
deps_run = next((i for i, (w, r) in enumerate(flat) if w == "RUN" and "install-deps.sh" in r), None)
need(copy_all is not None, "the sources are copied (COPY . ...)")
need(deps_run is not None, "the dependencies are installed by scripts/install-deps.sh")
if copy_all is not None and deps_run is not None:
    need(deps_run < copy_all, "dependencies are installed before the sources are copied (a source edit must reuse the dependency layer)")
    dependency_files = {"scripts/install-deps.sh", "scripts/install-nvcc.sh", "scripts/nvcc-requirements.txt"}
    for r in (r for w, r in flat[:copy_all] if w == "COPY" and "--from" not in r):
        sources = [a for a in r.split()[:-1] if not a.startswith("--")]
        need(set(sources) <= dependency_files,
             f"only the dependency scripts ({', '.join(sorted(dependency_files))}) are copied before the sources: COPY {r}")

# The kernels are compiled by the pinned nvcc (scripts/nvcc-requirements.txt), installed before the
# sources are copied: the local hub's commit, which the committed lock pins, depends on its bytes.
nvcc_run = next((i for i, (w, r) in enumerate(flat) if w == "RUN" and "scripts/install-nvcc.sh" in r), None)
need(nvcc_run is not None and copy_all is not None and nvcc_run < copy_all,
     "the pinned nvcc is installed by scripts/install-nvcc.sh before the sources are copied")

runs = [r for w, r in flat if w == "RUN"]
apt_runs = [r for r in runs if "apt-get" in r or "install-deps.sh" in r]
for r in apt_runs:
    need("--mount=type=cache,target=/var/cache/apt" in r and "--mount=type=cache,target=/var/lib/apt" in r,
         "every apt step uses BuildKit cache mounts for /var/cache/apt and /var/lib/apt: " + r[:80])
build_runs = [r for r in runs if "scripts/build.sh" in r]
need(build_runs and all(re.search(r"--mount=type=cache,target=/src/build\b", r) for r in build_runs),
     "the build step keeps its build directory in a cache mount (--mount=type=cache,target=/src/build)")
need(any("cmake --install" in r and "--strip" in r for r in build_runs),
     "binaries are installed stripped (cmake --install ... --strip)")

# The token: a build secret, never an ARG or ENV (those land in the image history).
for w, r in flat:
    if w in ("ARG", "ENV") and re.search(r"TOKEN", r, re.I):
        problems.append(f"no {w} carries a token ({w} {r[:60]}): use --secret id=hf_token")
fetch = [r for r in runs if "fetch_kernels.sh" in r]
need(bool(fetch), "the kernels are fetched by scripts/fetch_kernels.sh (lock --locked, download, verify)")
need(any("-DCMAKE_CUDA_COMPILER=" in r for r in build_runs),
     "the build step configures the kernels with the pinned nvcc (-DCMAKE_CUDA_COMPILER=...)")
import os, subprocess
need(all("scripts/deploy/kernels.lock" in r for r in fetch),
     "the fetch step always uses the committed scripts/deploy/kernels.lock (checked with lock --locked)")
need(os.path.isfile(f"{root}/scripts/deploy/kernels.lock") and os.path.isfile(f"{root}/scripts/deploy/kernels.lock.hashes"),
     "scripts/deploy/kernels.lock and kernels.lock.hashes are in the tree (scripts/update_deploy_lock.sh makes them)")
ignored = subprocess.run(["git", "-C", root, "check-ignore", "-q", "scripts/deploy/kernels.lock"]).returncode == 0
need(not ignored, "scripts/deploy/kernels.lock is not ignored by git (it is committed)")
need(all("--mount=type=secret,id=hf_token" in r for r in fetch),
     "the fetch step reads the token from a build secret (--mount=type=secret,id=hf_token)")
fetch_script = open(f"{root}/scripts/fetch_kernels.sh").read()
need('lock --locked' in fetch_script, "scripts/fetch_kernels.sh checks a committed lock with `kernels lock --locked`")

# The runtime stage.
final = stages[-1]["steps"] if stages else []
words = [w for w, _ in final]
users = [r for w, r in final if w == "USER"]
need(users and users[-1].split(":")[0] not in ("root", "0"), "the runtime stage runs as a non-root USER")
need("ENTRYPOINT" in words, "the runtime stage has an ENTRYPOINT")
need("HEALTHCHECK" in words, "the runtime stage has a HEALTHCHECK")
labels = " ".join(r for w, r in final if w == "LABEL")
for key in ("title", "version", "revision", "licenses"):
    need(f"org.opencontainers.image.{key}" in labels, f"OCI label org.opencontainers.image.{key}")
copies = " ".join(r for w, r in final if w == "COPY")
need("/opt/kernels/prefix/" in copies, "the runtime stage carries the installed prefix (CLI, loader, C and C++ headers)")
need(any("kernels_loader" in r for r in runs), "the Python package (kernels_loader) is installed")
env = " ".join(r for w, r in final if w == "ENV")
need("HF_HUB_OFFLINE=1" in env, "the runtime image is offline (HF_HUB_OFFLINE=1)")

ignore = open(f"{root}/.dockerignore").read().split()
need("/build*/" in ignore and "/.git/" in ignore, ".dockerignore keeps build trees and .git out of the context")

for p in problems:
    print("FAIL: Dockerfile:", p)
if problems:
    sys.exit(1)
print(f"PASS: {path}: {len(stages)} stages; dependencies and the pinned nvcc before sources; apt and "
      "build cache mounts; token as a build secret; fetch with lock --locked against the committed "
      "lock; stripped install; runtime as a non-root "
      "USER with ENTRYPOINT, HEALTHCHECK and OCI labels")
PY
