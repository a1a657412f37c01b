#!/usr/bin/env bash
# Builds local stand-ins for the Dockerfile's base images on a machine whose Docker engine
# cannot pull from a registry (an air-gapped builder, or this project's development VMs):
#
#   kernels-stand-in/ubuntu:24.04                  Ubuntu 24.04 (debootstrap, minbase), for
#                                                  BUILD_IMAGE (ubuntu:24.04) and RUNTIME_IMAGE
#                                                  (nvidia/cuda:13.0.0-base-ubuntu24.04)
#   kernels-stand-in/cuda:13.0-devel-ubuntu24.04   only with --with-cuda: the same plus this
#                                                  machine's CUDA toolkit at /usr/local/cuda (the
#                                                  Dockerfile no longer needs it: its nvcc comes
#                                                  from PyPI; it costs the toolkit's size, ~3 GB)
#
#   scripts/docker-stand-in-images.sh [--with-cuda [CUDA_DIR]]
#                                    (CUDA_DIR default /usr/local/cuda; needs root, docker,
#                                     debootstrap and the Ubuntu archive)
#   docker build --network host \
#     --build-arg BUILD_IMAGE=kernels-stand-in/ubuntu:24.04 \
#     --build-arg RUNTIME_IMAGE=kernels-stand-in/ubuntu:24.04 -t attention-server .
#
# They stand in for ubuntu:24.04 and nvidia/cuda:13.0.0-base-ubuntu24.04 (and -devel-): the same
# distribution and apt sources (main, universe; updates and security), the toolkit at the same
# path, PATH and LIBRARY_PATH set the same way. Debian hosts lack Ubuntu's archive key, so
# debootstrap itself runs with --no-check-gpg; every package installed later inside the images
# is verified by apt against the Ubuntu keyring that debootstrap put there. For tests only.
set -euo pipefail
with_cuda=
case "${1:-}" in
  --with-cuda) with_cuda=1; shift ;;
  "") ;;
  *) echo "usage: $0 [--with-cuda [CUDA_DIR]]" >&2; exit 2 ;;
esac
[ -n "$with_cuda" ] || [ $# -eq 0 ] || { echo "usage: $0 [--with-cuda [CUDA_DIR]]" >&2; exit 2; }
cuda_dir="$(readlink -f "${1:-/usr/local/cuda}")"
mirror="${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}"
devel_tag=kernels-stand-in/cuda:13.0-devel-ubuntu24.04
base_tag=kernels-stand-in/ubuntu:24.04

die() { echo "docker-stand-in-images: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info fails)"
[ -z "$with_cuda" ] || [ -x "$cuda_dir/bin/nvcc" ] || die "no CUDA toolkit at $cuda_dir (pass its directory after --with-cuda)"

work="$(mktemp -d /tmp/kernels-stand-in.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# debootstrap knows Ubuntu releases by script name; every Ubuntu script is the "gutsy" one.
scripts=/usr/share/debootstrap/scripts
[ -e "$scripts/noble" ] || ln -s gutsy "$scripts/noble"
echo "docker-stand-in-images: debootstrap noble (minbase) from $mirror" >&2
debootstrap --variant=minbase --no-check-gpg noble "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
rm -f "$work/rootfs/etc/apt/sources.list"
cat > "$work/rootfs/etc/apt/sources.list.d/ubuntu.sources" <<EOF
Types: deb
URIs: $mirror/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse

Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
EOF
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/archives/"*.deb

tar -C "$work/rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$base_tag" >/dev/null
echo "docker-stand-in-images: $base_tag" >&2
[ -n "$with_cuda" ] || exit 0

cuda_name="$(basename "$cuda_dir")"
cp -a "$cuda_dir" "$work/rootfs/usr/local/$cuda_name"
[ "$cuda_name" = cuda ] || ln -s "$cuda_name" "$work/rootfs/usr/local/cuda"
tar -C "$work/rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' \
  -c 'ENV PATH=/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LIBRARY_PATH=/usr/local/cuda/lib64/stubs' - "$devel_tag" >/dev/null
echo "docker-stand-in-images: $devel_tag (CUDA from $cuda_dir)" >&2
