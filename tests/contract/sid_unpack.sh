# Shared by install_mysql.sh and install_valkey.sh (source it; bash only): unpack packages
# from Debian unstable into a private root without installing anything into the system
# or touching the system's apt state. Debian 12 lacks these servers; unstable's builds
# need a newer C runtime, which is unpacked beside them and used through ROOT's own loader.

# sid_setup WORK: an apt configuration of its own under WORK, with the unstable suite of
# the mirror this machine already uses; sets the array SID_OPTS for apt-get/apt-cache
sid_setup() {
  local work=$1 mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "deb [signed-by=$keyring] $mirror sid main" >"$work/sources.list"
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs"
  SID_OPTS=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work"
    -o "Dir::Cache::archives=$work/archives" -o APT::Sandbox::User=root)
  apt-get "${SID_OPTS[@]}" -qq update
}

# sid_depends PACKAGE: the package names its Depends line lists (no versions, no alternatives)
sid_depends() {
  apt-cache "${SID_OPTS[@]}" show "$1" | awk -F': ' '/^Depends:/ {print $2; exit}' \
    | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/ //g'
}

# sid_unpack WORK ROOT PACKAGE...: download the packages and unpack them into ROOT
sid_unpack() {
  local work=$1 root=$2 deb
  shift 2
  (cd "$work/debs" && apt-get "${SID_OPTS[@]}" -qq download "$@")
  mkdir -p "$root"
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
}

# sid_check ROOT BINARY NAME: fail if BINARY (under ROOT) misses a library; print its version
sid_check() {
  local libs="$1/usr/lib/x86_64-linux-gnu"
  local run=("$libs/ld-linux-x86-64.so.2" --library-path "$libs:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu")
  if "${run[@]}" --list "$1/$2" | grep 'not found'; then
    echo "$3: libraries missing (above): install them from Debian 12 or add them here" >&2
    return 1
  fi
  "${run[@]}" "$1/$2" --version
}
