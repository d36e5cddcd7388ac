#!/usr/bin/env bash
# Builds the Debian package dist/chatqueue_<version>_<arch>.deb from a release
# build with the Swift runtime linked statically, then runs lintian on it (no
# errors allowed). Prints the package's path on stdout, the rest on stderr.
#
#   scripts/package-deb.sh                 # build, package, lintian
#   scripts/package-deb.sh --binary PATH   # package this chatqueue instead of building one
#   scripts/package-deb.sh --no-lintian    # skip the lintian run
#
# Contents: /usr/bin/chatqueue, the units in /usr/lib/systemd/system,
# /etc/chatqueue/chatqueue.yaml (a conffile), the docs in
# /usr/share/doc/chatqueue. No maintainer scripts: installing the package
# starts nothing (docs/operations.md, "Installing from the package").
# The version is ChatQueueVersion.current (`chatqueue --version`) plus the
# Debian revision below; Depends: comes from dpkg-shlibdeps.
#
# Environment: CHATQUEUE_SCRATCH_PATH (SwiftPM scratch path, default .build),
# CHATQUEUE_DEB_OUTPUT (output folder, default dist/, git-ignored).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBIAN_REVISION=1
MAINTAINER="chatqueue <dev@chatqueue.invalid>"
PACKAGING="$ROOT/packaging/deb"
OUTPUT="${CHATQUEUE_DEB_OUTPUT:-$ROOT/dist}"
SCRATCH="${CHATQUEUE_SCRATCH_PATH:-$ROOT/.build}"

binary=""
run_lintian=1
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --no-lintian) run_lintian=0; shift ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument $1"; exit 2 ;;
  esac
done

# The packaging tools, installed when missing (needs root or sudo).
packaging_tools=(dpkg-dev binutils)
[ "$run_lintian" -eq 1 ] && packaging_tools+=(lintian)
install_apt_packages "${packaging_tools[@]}"

if [ -z "$binary" ]; then
  command -v swift >/dev/null || { log "swift is not on PATH: install Swift 6 (swift.org) first"; exit 1; }
  log "building (release --static-swift-stdlib, scratch path $SCRATCH)"
  (cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product chatqueue 2>&1 |
    grep -vE '^\[[0-9]+/[0-9]+\]' >&2)
  binary="$(cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)/chatqueue"
fi
[ -x "$binary" ] || { log "$binary is not an executable file"; exit 1; }

upstream_version="$("$binary" --version)"
[[ "$upstream_version" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || { log "unusable version '$upstream_version' from $binary --version"; exit 1; }
version="$upstream_version-$DEBIAN_REVISION"
arch="$(dpkg --print-architecture)"
deb="$OUTPUT/chatqueue_${version}_${arch}.deb"

mkdir -p "$OUTPUT"
work="$(mktemp -d "$OUTPUT/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
stage="$work/chatqueue"
umask 022

# Files, with the modes Debian expects (0755 directories and programs, 0644 the rest).
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib/systemd/system" "$stage/etc/chatqueue" \
  "$stage/usr/share/doc/chatqueue" "$stage/usr/share/man/man1" "$stage/usr/share/lintian/overrides"
install -m 0755 "$binary" "$stage/usr/bin/chatqueue"
# Debug symbols stay in the build; the reflection metadata Swift needs is in
# allocated sections, which --strip-unneeded keeps.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/chatqueue"
"$stage/usr/bin/chatqueue" --version >/dev/null || { log "the stripped binary does not run"; exit 1; }
install -m 0644 "$ROOT/systemd/chatqueue-worker@.service" "$ROOT/systemd/chatqueue-worker.target" \
  "$stage/usr/lib/systemd/system/"
grep -q '^ExecStart=/usr/bin/chatqueue ' "$stage/usr/lib/systemd/system/chatqueue-worker@.service" ||
  { log "systemd/chatqueue-worker@.service: ExecStart does not run /usr/bin/chatqueue"; exit 1; }
install -m 0644 "$ROOT/config/chatqueue.yaml" "$stage/etc/chatqueue/chatqueue.yaml"
printf '/etc/chatqueue/chatqueue.yaml\n' >"$stage/DEBIAN/conffiles"
install -m 0644 "$ROOT/README.md" "$ROOT"/docs/*.md "$PACKAGING/copyright" "$stage/usr/share/doc/chatqueue/"

gzip -9n <"$PACKAGING/chatqueue.1" >"$stage/usr/share/man/man1/chatqueue.1.gz"
# Each override says why in the file.
install -m 0644 "$PACKAGING/lintian-overrides" "$stage/usr/share/lintian/overrides/chatqueue"

# changelog.Debian.gz: one entry for this build (gzip -n: no name or time stamp, reproducible).
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
date_rfc2822="$(date -R -d "@$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)")"
{
  printf 'chatqueue (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Built from commit %s; the changes are in README.md, "Changelog".\n\n' "$commit"
  printf ' -- %s  %s\n' "$MAINTAINER" "$date_rfc2822"
} | gzip -9n >"$stage/usr/share/doc/chatqueue/changelog.Debian.gz"
chmod 0644 "$stage/usr/share/doc/chatqueue/changelog.Debian.gz" "$stage/usr/share/man/man1/chatqueue.1.gz"

# Depends: dpkg-shlibdeps wants a debian/control naming the package; a minimal
# one in the work folder is enough.
mkdir -p "$work/src/debian"
printf 'Source: chatqueue\n\nPackage: chatqueue\nArchitecture: any\n' >"$work/src/debian/control"
depends="$(cd "$work/src" && dpkg-shlibdeps -O --warnings=0 -e"$stage/usr/bin/chatqueue" | sed -n 's/^shlibs:Depends=//p')"
[ -n "$depends" ] || { log "dpkg-shlibdeps found no dependencies"; exit 1; }

installed_size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<EOF
Package: chatqueue
Version: $version
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $installed_size
Depends: $depends
Suggests: rabbitmq-server
Section: net
Priority: optional
Description: worker answering chat completion requests from a RabbitMQ queue
 chatqueue consumes OpenAI/DeepSeek-style chat completion requests from a
 RabbitMQ queue, calls a DeepSeek-compatible HTTP API, streams the partial
 answers to each request's reply queue and ends with the final response or a
 structured error. A request is acknowledged only after its final reply is
 confirmed by the broker.
 .
 The package installs the chatqueue command and the systemd units
 chatqueue-worker@.service and chatqueue-worker.target; it starts no service.
 Run workers with: systemctl enable --now chatqueue-worker@{1..4}
EOF
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
log "built $deb ($(du -h "$deb" | cut -f1); Depends: $depends)"

if [ "$run_lintian" -eq 1 ]; then
  log "lintian $(basename "$deb")"
  # Exit status: non-zero on errors (lintian's default --fail-on error).
  lintian --info --display-level '>=warning' "$deb" >&2 || { log "lintian reported errors"; exit 1; }
fi
printf '%s\n' "$deb"
