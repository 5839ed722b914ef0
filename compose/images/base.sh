#!/usr/bin/env bash
# Builds opsmesh-debian:bookworm, the base of every image in this stack, without a
# container registry: debootstrap makes a minimal Debian root from the Debian archive and
# `docker import` turns it into an image. The image records a hash of this script, so it is
# rebuilt only when the recipe changes (or with OPSMESH_REBUILD_BASE=1).
#
# Environment: OPSMESH_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# OPSMESH_BASE_IMAGE (default opsmesh-debian:bookworm). Needs root (debootstrap, chroot).
set -euo pipefail

image="${OPSMESH_BASE_IMAGE:-opsmesh-debian:bookworm}"
mirror="${OPSMESH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
recipe="$(sha256sum "$0" | cut -c1-16)"
say() { printf '[base image] %s\n' "$*"; }

if [ "${OPSMESH_REBUILD_BASE:-0}" != 1 ] \
  && [ "$(docker image inspect -f '{{ index .Config.Labels "org.opsmesh.base-recipe" }}' "$image" 2>/dev/null)" = "$recipe" ]; then
  say "$image is up to date"
  exit 0
fi
command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap, or make deps)"; exit 1; }

root="$(mktemp -d /var/tmp/opsmesh-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
say "debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# Security and point-release updates too, as the official Debian images have.
security="${mirror%/debian}/debian-security"
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
# Images install only what they name, and keep no package lists or caches.
cat >"$root/etc/apt/apt.conf.d/90opsmesh" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT
# Local certificate authorities of this host (a company's TLS-inspecting proxy, say) are
# trusted inside the images too, so builds can reach package registries over HTTPS.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  # (its stderr: a harmless note that the bundle file is not a single certificate)
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/tmp/*

say "docker import -> $image"
tar --numeric-owner -C "$root" -c . \
  | docker import \
      --change "LABEL org.opsmesh.base-recipe=$recipe" \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' \
      - "$image" >/dev/null
say "built $image"
