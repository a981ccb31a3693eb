#!/usr/bin/env bash
# Unpack a MySQL server (Oracle's MySQL, not MariaDB) into a private root for the tests.
# Debian 12 has only MariaDB, so the server comes from another distribution's archive,
# built against a newer C and C++ runtime than Debian 12's:
#
#   9    Debian unstable's mysql-server-core (MySQL 9.x)       default ROOT /opt/mysql9
#   8.0  Ubuntu 24.04's mysql-server-core-8.0 (MySQL 8.0.x,    default ROOT /opt/mysql8
#        the newest of noble, noble-updates and noble-security)
#
# The server and that runtime are unpacked (dpkg-deb -x) into ROOT; nothing is installed
# into the system and the system's apt state is left alone (see deb_unpack.sh).
# tests/contract/mysql_server.py then runs ROOT/usr/sbin/mysqld with ROOT's own loader.
#
#   sudo tests/contract/install_mysql.sh [9|8.0 [ROOT]]    (default: 9)
set -euo pipefail
VERSION=${1:-9}
case $VERSION in
  9) suite=sid package=mysql-server-core ;;
  8.0) suite=noble package=mysql-server-core-8.0 ;;
  *) echo "install_mysql: unknown version $VERSION (9 or 8.0)" >&2; exit 2 ;;
esac
ROOT=${2:-/opt/mysql${VERSION%%.*}}
work=$(mktemp -d)
stage=$ROOT.partial  # becomes ROOT once checked
trap 'rm -rf "$work" "$stage"' EXIT
rm -rf "$stage"
# shellcheck source=tests/contract/deb_unpack.sh
. "$(dirname "$0")/deb_unpack.sh"
deb_setup "$work" "$suite"

# the server, the libraries it names, and the runtime they need (names as the suite has
# them)
deps=$(deb_depends "$package" | grep -v '^perl$' || true)
# shellcheck disable=SC2086
deb_unpack "$work" "$stage" "$package" $deps libc6 libstdc++6 libgcc-s1 \
  libunwind8 libtcmalloc-minimal4t64
deb_check "$stage" usr/sbin/mysqld install_mysql
deb_place "$stage" "$ROOT"
