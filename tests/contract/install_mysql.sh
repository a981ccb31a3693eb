#!/usr/bin/env bash
# Unpack a MySQL server (Oracle's MySQL, not MariaDB) into a private root for the tests,
# from Debian's own archive: Debian 12 has only MariaDB, Debian unstable has
# mysql-server-core (MySQL 8.4 or later, built against a newer C and C++ runtime than
# Debian 12's). The server and that runtime are unpacked (dpkg-deb -x) into ROOT;
# nothing is installed into the system and the system's apt state is left alone.
# tests/contract/mysql_server.py then runs ROOT/usr/sbin/mysqld with ROOT's own loader.
#
#   sudo tests/contract/install_mysql.sh [ROOT]    (default: /opt/mysql)
set -euo pipefail
ROOT=${1:-/opt/mysql}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/contract/sid_unpack.sh
. "$(dirname "$0")/sid_unpack.sh"
sid_setup "$work"

# the server, the libraries it names, and the runtime they need (names as unstable has them)
deps=$(sid_depends mysql-server-core | grep -v '^perl$' || true)
# shellcheck disable=SC2086
sid_unpack "$work" "$ROOT" mysql-server-core $deps libc6 libstdc++6 libgcc-s1 \
  libunwind8 libtcmalloc-minimal4t64
sid_check "$ROOT" usr/sbin/mysqld install_mysql
