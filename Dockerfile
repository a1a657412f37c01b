# Multi-stage image for an inference server that uses kernels. BuildKit builds it (RUN --mount
# cache and secret mounts) with the engine's built-in Dockerfile frontend, Docker 20.10 or later:
# no `# syntax=` line, so no frontend image is pulled and an air-gapped builder works. Docker 23+
# clients need their buildx component for BuildKit; a 20.10-22 client needs DOCKER_BUILDKIT=1.
#   deps     the build dependencies only (scripts/install-deps.sh) and the pinned CUDA compiler
#            (scripts/install-nvcc.sh: PyPI's nvcc wheels, checked by hash, version in
#            scripts/nvcc-requirements.txt): a source edit reuses these layers.
#   build    compiles the CLI, the loader and the kernels (the pinned nvcc) in a cached build
#            directory, installs them stripped into /opt/kernels/prefix, publishes the built
#            bundle into /opt/kernels/local-hub, then runs scripts/fetch_kernels.sh: `kernels lock
#            --locked` against the committed scripts/deploy/kernels.lock (a stale one stops the
#            build, naming scripts/update_deploy_lock.sh), download, verify.
#   runtime  the CLI, the loader library, its C and C++ headers, CMake and pkg-config files, the
#            Python package and the verified cache, read-only, with HF_HUB_OFFLINE=1, run as the
#            unprivileged user `kernels`: the server never touches the network.
#
#   docker build -t attention-server .
#   docker build --build-arg HF_ENDPOINT=https://huggingface.co --secret id=hf_token,env=HF_TOKEN \
#     -t attention-server .                 # the token is a build secret: never in a layer or the history
#   docker build --build-arg HF_ENDPOINT=file:///src/my-mirror -t attention-server .   # a mirror in the build context
#
# HF_ENDPOINT defaults to the local hub the build stage makes from this build context (the sm90a
# bundle, built with the pinned nvcc, so its bytes and the hub's commit are the ones the committed
# lock names; docs/DOCKER.md, "The lock"). Build arguments for slow or GPU-less builders:
#   KERNELS_CMAKE_ARGS   extra configure arguments, e.g. -DKERNELS_WITH_CUDA=OFF: no nvcc is
#                        installed and no kernels are compiled, so no local hub exists and
#                        HF_ENDPOINT must name a hub or mirror that has the locked commit
#   KERNELS_BUILD_JOBS   parallel compile jobs (default: every core the builder gives)
# tests/docker/check_dockerfile.sh checks these properties without an engine; e2e:docker_build
# builds the image where an engine answers.
# The build stages need no CUDA image: nvcc comes from PyPI, pinned. CUDA 13.0.0's nvcc (V13.0.48,
# as in the nvidia/cuda:13.0.0 devel image) is another build: its cubin differs in the toolkit note.
ARG BUILD_IMAGE=ubuntu:24.04
ARG RUNTIME_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04

FROM ${BUILD_IMAGE} AS deps
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# Only what installs the dependencies: editing any other file reuses these layers.
COPY scripts/install-deps.sh scripts/install-nvcc.sh scripts/nvcc-requirements.txt scripts/
# apt's downloads and lists live in cache mounts, kept between builds and never in a layer.
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache \
 && scripts/install-deps.sh --build-only
# The pinned nvcc into /opt/nvcc; its path in /opt/nvcc.path for the build step. pip's downloads
# live in a cache mount. Skipped when the build compiles no kernels. A builder behind a
# TLS-inspecting proxy passes the CA bundle that trusts it as the build secret ca_bundle
# (`--secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt`): read here and in the fetch
# step only, in no layer; the wheels are still checked by hash.
ARG KERNELS_CMAKE_ARGS=""
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && case " ${KERNELS_CMAKE_ARGS} " in \
      *" -DKERNELS_WITH_CUDA=OFF "*) echo "Dockerfile: -DKERNELS_WITH_CUDA=OFF: no nvcc installed" ;; \
      *) scripts/install-nvcc.sh /opt/nvcc > /opt/nvcc.path ;; \
    esac

FROM deps AS build
COPY . .
# The build directory is a cache mount: a rebuild after a source edit recompiles only what
# changed. What the later stages need is installed out of it, stripped, in the same step.
# The cache mount outlives the build arguments: a build directory configured with other
# arguments (recorded in build/.docker-cmake-args) is emptied first, never silently reused.
ARG KERNELS_CMAKE_ARGS=""
ARG KERNELS_BUILD_JOBS=""
RUN --mount=type=cache,target=/src/build,id=kernels-build \
    nvcc="$(cat /opt/nvcc.path 2>/dev/null || true)" \
 && args="-DKERNELS_BUILD_TESTS=OFF ${nvcc:+-DCMAKE_CUDA_COMPILER=$nvcc }${KERNELS_CMAKE_ARGS}" \
 && if [ "$(cat build/.docker-cmake-args 2>/dev/null)" != "$args" ]; then \
      find build -mindepth 1 -delete; fi \
 && KERNELS_CMAKE_ARGS="$args" KERNELS_BUILD_JOBS="${KERNELS_BUILD_JOBS}" scripts/build.sh \
 && printf '%s' "$args" > build/.docker-cmake-args \
 && cmake --install build --prefix /opt/kernels/prefix --strip \
 && mkdir -p /opt/kernels/prefix/lib/python \
 && cp -a build/loader/python/kernels_loader /opt/kernels/prefix/lib/python/ \
 && strip --strip-unneeded /opt/kernels/prefix/lib/python/kernels_loader/*.so \
 && rm -rf /opt/kernels/local-hub \
 && if [ -d build/local-hub ]; then cp -a build/local-hub /opt/kernels/local-hub; fi \
 && scripts/runtime-packages.sh build/cli/kernels build/loader/libkernels_loader.so \
    > /opt/kernels/runtime-packages.txt
ARG HF_ENDPOINT=file:///opt/kernels/local-hub
# The token comes only as a build secret (`--secret id=hf_token,...`), read from a file that
# exists during this step alone; no ARG or ENV carries it, so no layer and no history entry does.
# The project is fetched where the runtime image keeps it, /opt/kernels/project: the cache records
# each project under its path (.kernels-projects/), so the runtime's offline `kernels download`
# finds it recorded and writes nothing into its read-only cache.
# The committed scripts/deploy/kernels.lock pins the commit of the local hub that the pinned nvcc
# gives (the hub's commit is derived from the bundle's bytes); `kernels lock --locked` checks it
# against HF_ENDPOINT, so a lock left stale by a kernel change stops the build, naming
# scripts/update_deploy_lock.sh (docs/DOCKER.md, "The lock").
RUN --mount=type=secret,id=hf_token,required=false \
    --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/hf_token ]; then export HF_TOKEN_PATH=/run/secrets/hf_token; fi \
 && if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi \
 && if [ "${HF_ENDPOINT}" = file:///opt/kernels/local-hub ] && [ ! -d /opt/kernels/local-hub ]; then \
      echo "Dockerfile: no local hub was built (KERNELS_CMAKE_ARGS has -DKERNELS_WITH_CUDA=OFF): pass --build-arg HF_ENDPOINT=<hub or mirror>" >&2; \
      exit 1; fi \
 && mkdir -p /opt/kernels/project \
 && cp scripts/deploy/pyproject.toml scripts/deploy/kernels.lock scripts/deploy/kernels.lock.hashes \
       /opt/kernels/project/ \
 && HF_ENDPOINT="${HF_ENDPOINT}" \
    scripts/fetch_kernels.sh /opt/kernels/prefix/bin/kernels /opt/kernels/project /opt/kernels/cache

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="attention-server" \
      org.opencontainers.image.description="kernels CLI, libkernels_loader and a verified read-only kernel cache" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV DEBIAN_FRONTEND=noninteractive
# The packages that hold the CLI's and the loader's shared libraries, as the build stage found
# them (scripts/runtime-packages.sh): their names differ between distribution releases.
COPY --from=build /opt/kernels/runtime-packages.txt /tmp/runtime-packages.txt
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends ca-certificates python3 \
 && rm -f /tmp/runtime-packages.txt \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin kernels
# bin/kernels, lib/libkernels_loader.so* and .a, include/kernels/ (C ABI, C++ API and the lockfile
# headers it uses), lib/cmake/kernels_loader, lib/pkgconfig; all stripped.
COPY --from=build /opt/kernels/prefix/ /usr/local/
# kernels.lock and, for a format 2 lock, its hashes sidecar kernels.lock.hashes (docs/LOCKFILE.md).
COPY --from=build /opt/kernels/project /opt/kernels/project
# Owned by root and read-only: the server's user can read the cache, never change it.
COPY --from=build /opt/kernels/cache /opt/kernels/cache
ENV KERNELS_CACHE=/opt/kernels/cache \
    HF_HUB_OFFLINE=1 \
    KERNELS_LOADER_LIBRARY=/usr/local/lib/libkernels_loader.so \
    PYTHONPATH=/usr/local/lib/python
RUN chmod -R a-w /opt/kernels/cache && ldconfig && kernels verify /opt/kernels/project
USER kernels:kernels
WORKDIR /opt/kernels
HEALTHCHECK --interval=30m --timeout=120s CMD ["kernels", "-q", "verify", "/opt/kernels/project"]
ENTRYPOINT ["kernels"]
CMD ["verify", "/opt/kernels/project"]
