# Multi-stage image for an inference server that uses kernels:
#   build    compiles the CLI, the loader and the kernels (nvcc comes from the CUDA base image),
#            publishes the built bundle into build/local-hub, then runs scripts/fetch_kernels.sh:
#            kernels lock (or --locked for a committed lock), download, verify.
#   runtime  carries the CLI, the loader library and headers, the Python package, and the
#            verified cache, read-only, with HF_HUB_OFFLINE=1: the server never touches the network.
#
#   docker build -t attention-server .
#   docker build --build-arg HF_ENDPOINT=https://huggingface.co -t attention-server .
#   docker build --build-arg HF_ENDPOINT=file:///src/my-mirror -t attention-server .   # a mirror in the build context
#
# HF_ENDPOINT defaults to the local hub the build stage makes from this build context.
ARG BUILD_IMAGE=nvidia/cuda:13.0.0-devel-ubuntu24.04
ARG RUNTIME_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04

FROM ${BUILD_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY . .
RUN rm -rf build && scripts/install-deps.sh --build-only \
 && KERNELS_CMAKE_ARGS="-DKERNELS_BUILD_TESTS=OFF" scripts/build.sh
ARG HF_ENDPOINT=file:///src/build/local-hub
ARG HF_TOKEN=
RUN HF_ENDPOINT="${HF_ENDPOINT}" HF_TOKEN="${HF_TOKEN}" \
    scripts/fetch_kernels.sh build/cli/kernels scripts/deploy /opt/kernels/cache \
 && cp scripts/deploy/kernels.lock* /opt/kernels/ \
 && scripts/runtime-packages.sh build/cli/kernels build/loader/libkernels_loader.so \
    > /opt/kernels/runtime-packages.txt

FROM ${RUNTIME_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# The packages that hold the CLI's and the loader's shared libraries, as the build stage found
# them (scripts/runtime-packages.sh): their names differ between distribution releases.
COPY --from=build /opt/kernels/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /src/build/cli/kernels /usr/local/bin/kernels
COPY --from=build /src/build/loader/libkernels_loader.so /usr/local/lib/libkernels_loader.so
COPY --from=build /src/loader/include/ /usr/local/include/
COPY --from=build /src/build/loader/python/kernels_loader /usr/local/lib/kernels_loader/kernels_loader
COPY --from=build /src/scripts/deploy/pyproject.toml /opt/kernels/project/pyproject.toml
# kernels.lock and, for a format 2 lock, its hashes sidecar kernels.lock.hashes (docs/LOCKFILE.md).
COPY --from=build /opt/kernels/kernels.lock* /opt/kernels/project/
COPY --from=build /opt/kernels/cache /opt/kernels/cache
ENV KERNELS_CACHE=/opt/kernels/cache \
    HF_HUB_OFFLINE=1 \
    KERNELS_LOADER_LIBRARY=/usr/local/lib/libkernels_loader.so \
    PYTHONPATH=/usr/local/lib/kernels_loader
RUN chmod -R a-w /opt/kernels/cache && ldconfig && kernels verify /opt/kernels/project
