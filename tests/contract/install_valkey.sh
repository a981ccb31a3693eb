#!/usr/bin/env bash
# Unpack a Valkey server into a private root for the tests, from Debian's own archive:
# Debian 12 has no Valkey, Debian unstable has valkey-server (built against a newer C
# runtime than Debian 12's). The server, its libraries and that runtime are unpacked
# (dpkg-deb -x) into ROOT; nothing is installed into the system and the system's apt
# state is left alone (the same approach as install_mysql.sh).
# tests/contract/valkey_server.py then runs ROOT/usr/bin/valkey-server with ROOT's own
# loader.
#
#   sudo tests/contract/install_valkey.sh [ROOT]    (default: /opt/valkey)
set -euo pipefail
ROOT=${1:-/opt/valkey}
work=$(mktemp -d)
stage=$ROOT.partial  # becomes ROOT once checked
trap 'rm -rf "$work" "$stage"' EXIT
rm -rf "$stage"
# shellcheck source=tests/contract/deb_unpack.sh
. "$(dirname "$0")/deb_unpack.sh"
deb_setup "$work" sid

# valkey-server is a symlink into valkey-tools, which holds the binary; take the
# libraries valkey-tools names (not the systemd helpers: the tests run no service)
deps=$(deb_depends valkey-tools | grep '^lib' || true)
# shellcheck disable=SC2086
deb_unpack "$work" "$stage" valkey-server valkey-tools $deps libc6
deb_check "$stage" usr/bin/valkey-server install_valkey
deb_place "$stage" "$ROOT"
