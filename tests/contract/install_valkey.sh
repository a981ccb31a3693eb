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
trap 'rm -rf "$work"' EXIT

# the Debian mirror this machine already uses, with the unstable suite
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $mirror sid main" >"$work/sources.list"
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs"
opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work"
      -o "Dir::Cache::archives=$work/archives" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" -qq update

# valkey-server is a symlink into valkey-tools, which holds the binary; take the
# libraries valkey-tools names (not the systemd helpers: the tests run no service)
deps=$(apt-cache "${opts[@]}" show valkey-tools | awk -F': ' '/^Depends:/ {print $2; exit}' \
  | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/ //g' | grep '^lib' || true)
cd "$work/debs"
# shellcheck disable=SC2086
apt-get "${opts[@]}" -qq download valkey-server valkey-tools $deps libc6
mkdir -p "$ROOT"
for deb in ./*.deb; do dpkg-deb -x "$deb" "$ROOT"; done

libs="$ROOT/usr/lib/x86_64-linux-gnu"
run=("$libs/ld-linux-x86-64.so.2" --library-path "$libs:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu")
if "${run[@]}" --list "$ROOT/usr/bin/valkey-server" | grep 'not found'; then
  echo "install_valkey: libraries missing (above): install them from Debian 12 or add them here" >&2
  exit 1
fi
"${run[@]}" "$ROOT/usr/bin/valkey-server" --version
