# The Dockerfile, built wherever a Docker engine answers, from a fresh clone of the committed tree.
# Settings (environment):
#   KERNELS_DOCKER                 the docker client (default: docker). BuildKit is required: a
#                                  Docker 23+ client needs its buildx component, a 20.10-22 client
#                                  has BuildKit built in (DOCKER_BUILDKIT=1, set here); a client
#                                  that has neither makes the test skip and say so.
#   KERNELS_DOCKER_BUILD_IMAGE     base images (default: the Dockerfile's, ubuntu:24.04 and nvidia/cuda;
#   KERNELS_DOCKER_RUNTIME_IMAGE   where they cannot be pulled, the local stand-ins that
#                                  scripts/docker-stand-in-images.sh makes, else the test skips)
#   KERNELS_DOCKER_CMAKE_ARGS      the KERNELS_CMAKE_ARGS build argument, e.g. -DKERNELS_WITH_CUDA=OFF
#                                  where the in-image CUDA build is too slow for the builder
#   KERNELS_DOCKER_BUILD_JOBS      the KERNELS_BUILD_JOBS build argument (compile jobs in the image)
#   KERNELS_DOCKER_HUB             a local hub directory (e.g. build/local-hub): copied into the
#                                  clone's build context and used as HF_ENDPOINT, for builds that
#                                  compile no kernels themselves
#   KERNELS_DOCKER_CA_BUNDLE       a CA bundle file passed as the build secret ca_bundle, for a
#                                  builder behind a TLS-inspecting proxy (pip's PyPI downloads and
#                                  an https HF_ENDPOINT trust it), e.g. /etc/ssl/certs/ca-certificates.crt
# The runtime image must then, with no network: verify its cache on a read-only root filesystem,
# do so as a user who cannot write the cache, find every shared library of the CLI and the loader,
# and load the loader from Python. The image must run as a non-root user with an ENTRYPOINT, a
# canary token given as the build secret must appear nowhere in its history or configuration, and
# a rebuild after a source-only change must take the dependency layer from the cache (BuildKit
# plain progress: "#N CACHED" for the RUN of install-deps.sh). The same properties are read from
# the Dockerfile's text, without an engine, by docker:dockerfile_static. Without a Docker engine
# (CI has none) it skips; e2e:ci_install_fresh_clone runs the same download and verify steps
# through scripts/fetch_kernels.sh. docs/DOCKER.md records the runs so far.
set -euo pipefail
: "${KERNELS_SOURCE_DIR:?}"
docker="${KERNELS_DOCKER:-docker}"
if ! command -v "$docker" >/dev/null; then
  echo "SKIPPED: $docker is not installed, so the Dockerfile cannot be built here"
  exit 0
fi
docker() { command "$docker" "$@"; }
if ! why=$(docker info 2>&1 >/dev/null); then
  echo "SKIPPED: no Docker engine answers (docker info: $(echo "$why" | tail -1)); the Docker steps run in e2e:ci_install_fresh_clone"
  exit 0
fi
client=$(docker version -f '{{.Client.Version}}' 2>/dev/null || echo unknown)
if [ "${client%%.*}" -ge 23 ] 2>/dev/null && ! docker buildx version >/dev/null 2>&1; then
  echo "SKIPPED: the docker client $client builds with BuildKit only through its buildx component, which is missing (install docker-buildx, or set KERNELS_DOCKER to a 20.10-22 client, which has BuildKit built in)"
  exit 0
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
scratch=$(mktemp -d /tmp/kernels-docker.XXXXXX)
tag="kernels-e2e/attention-server:$$"
trap 'docker rmi -f "$tag" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT

git clone -q --no-hardlinks "$KERNELS_SOURCE_DIR" "$scratch/clone"
# The base images: as named, else pulled, else the local stand-ins, else skip.
image_ready() { docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1; }
pick_image() {  # pick_image NAMED STAND_IN: prints the image to use, or nothing
  if image_ready "$1"; then echo "$1"; elif docker image inspect "$2" >/dev/null 2>&1; then echo "$2"; fi
}
build_image=$(pick_image "${KERNELS_DOCKER_BUILD_IMAGE:-ubuntu:24.04}" \
  kernels-stand-in/ubuntu:24.04)
runtime_image=$(pick_image "${KERNELS_DOCKER_RUNTIME_IMAGE:-nvidia/cuda:13.0.0-base-ubuntu24.04}" \
  kernels-stand-in/ubuntu:24.04)
if [ -z "$build_image" ] || [ -z "$runtime_image" ]; then
  echo "SKIPPED: the base images cannot be pulled here and no stand-ins exist (run scripts/docker-stand-in-images.sh, or set KERNELS_DOCKER_BUILD_IMAGE and KERNELS_DOCKER_RUNTIME_IMAGE)"
  exit 0
fi
# A canary token passed the only supported way, as a build secret: it must appear nowhere in the
# image's history or configuration.
canary="hf_canary_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$canary" > "$scratch/token"
args=(--build-arg "BUILD_IMAGE=$build_image" --build-arg "RUNTIME_IMAGE=$runtime_image"
      --secret "id=hf_token,src=$scratch/token" --progress plain)
[ -z "${KERNELS_DOCKER_CMAKE_ARGS:-}" ] || args+=(--build-arg "KERNELS_CMAKE_ARGS=$KERNELS_DOCKER_CMAKE_ARGS")
[ -z "${KERNELS_DOCKER_BUILD_JOBS:-}" ] || args+=(--build-arg "KERNELS_BUILD_JOBS=$KERNELS_DOCKER_BUILD_JOBS")
if [ -n "${KERNELS_DOCKER_CA_BUNDLE:-}" ]; then
  [ -s "$KERNELS_DOCKER_CA_BUNDLE" ] || fail "KERNELS_DOCKER_CA_BUNDLE=$KERNELS_DOCKER_CA_BUNDLE is not a non-empty file"
  args+=(--secret "id=ca_bundle,src=$KERNELS_DOCKER_CA_BUNDLE")
fi
if [ -n "${KERNELS_DOCKER_HUB:-}" ]; then
  [ -d "$KERNELS_DOCKER_HUB/api/kernels" ] || fail "KERNELS_DOCKER_HUB=$KERNELS_DOCKER_HUB is not a local hub (no api/kernels/ in it)"
  cp -a "$KERNELS_DOCKER_HUB" "$scratch/clone/e2e-hub"
  args+=(--build-arg "HF_ENDPOINT=file:///src/e2e-hub")
fi
# Host networking for the build's apt steps: it also works on engines without a bridge network.
echo "$docker build ${args[*]} (from a fresh clone of $(git -C "$scratch/clone" rev-parse --short HEAD))"
export DOCKER_BUILDKIT=1
start=$SECONDS
docker build --network host "${args[@]}" -t "$tag" "$scratch/clone" > "$scratch/build.log" 2>&1 \
  || { tail -40 "$scratch/build.log"; fail "docker build failed"; }
echo "built in $((SECONDS - start)) s"
grep -E "Locked|Downloaded|OK |verified" "$scratch/build.log" | head -20 || true

user=$(docker image inspect -f '{{.Config.User}}' "$tag")
case "${user%%:*}" in
  "" | root | 0) fail "the runtime image runs as root (User: '$user')" ;;
esac
[ -n "$(docker image inspect -f '{{.Config.Entrypoint}}' "$tag" | tr -d '[]')" ] || fail "no ENTRYPOINT"
if { docker history --no-trunc "$tag"; docker image inspect "$tag"; } | grep -q "$canary"; then
  fail "the build secret appears in the image history or configuration"
fi

# A source-only change: the dependency layer must come from the cache, not be rebuilt.
echo "// a source-only change" >> "$scratch/clone/cli/main.cpp"
start=$SECONDS
docker build --network host "${args[@]}" -t "$tag" "$scratch/clone" > "$scratch/rebuild.log" 2>&1 \
  || { tail -40 "$scratch/rebuild.log"; fail "the rebuild after a source change failed"; }
echo "rebuilt after a source-only change in $((SECONDS - start)) s"
step=$(grep -m1 -E '^#[0-9]+ \[deps [0-9]+/[0-9]+\] RUN .*install-deps\.sh' "$scratch/rebuild.log" | cut -d' ' -f1)
[ -n "$step" ] || fail "the rebuild log does not show the dependency step (BuildKit plain progress)"
grep -q "^$step CACHED" "$scratch/rebuild.log" \
  || { grep "^$step " "$scratch/rebuild.log" | tail -5; fail "a source-only change rebuilt the dependency layer"; }
echo "user $user; secret not in the history; a source-only rebuild reused the dependency layer"

run() { docker run --rm --network none "$@"; }
run --read-only "$tag" verify /opt/kernels/project || fail "the image's cache does not verify"
run --read-only --user 65534:65534 "$tag" verify /opt/kernels/project \
  || fail "an unprivileged user cannot verify the cache"
if run --user 65534:65534 --entrypoint "" "$tag" sh -c 'touch /opt/kernels/cache/probe' 2>/dev/null; then
  fail "the cache in the image is writable"
fi
run "$tag" -q download --all-variants /opt/kernels/project || fail "offline download of a complete cache is not a no-op"
run "$tag" cache ls | tee "$scratch/ls.txt"
grep -q "kernels-community/attention-fa3" "$scratch/ls.txt" || fail "cache ls does not show the locked repo"
missing=$(run --entrypoint "" "$tag" sh -c 'ldd /usr/local/bin/kernels /usr/local/lib/libkernels_loader.so | grep "not found" || true')
[ -z "$missing" ] || fail "shared libraries missing in the runtime image: $missing"
run --entrypoint "" "$tag" python3 -c '
import kernels_loader
try:
    print("loader from Python:", kernels_loader.device_source())
except kernels_loader.KernelsLoaderError as e:  # no GPU in this container
    print("loader from Python (no GPU here):", e)
' || fail "the Python package cannot load the loader library"
echo "PASS: the Dockerfile builds; the runtime image verifies its read-only cache offline"
