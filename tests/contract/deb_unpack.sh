# Shared by install_mysql.sh and install_valkey.sh (source it; bash only): unpack packages
# from Debian unstable or Ubuntu 24.04 into a private root without installing anything
# into the system or touching the system's apt state. Debian 12 lacks these servers;
# those builds need a newer C runtime, which is unpacked beside them and used through
# ROOT's own loader.

# deb_setup WORK SUITE: an apt configuration of its own under WORK; sets the array
# DEB_OPTS for apt-get/apt-cache. SUITE is one of
#   sid    Debian unstable, from the mirror this machine already uses, checked with
#          Debian's archive keyring (the system's);
#   noble  Ubuntu 24.04 with noble-updates and noble-security (the newest of the three
#          wins), from $UBUNTU_MIRROR (default http://archive.ubuntu.com/ubuntu), checked
#          with Ubuntu's archive keyring, which comes from Debian unstable's ubuntu-keyring
#          package (itself checked with Debian's keyring) unpacked under WORK.
deb_setup() {
  local work=$1 suite=$2 keyring
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs"
  case $suite in
    sid)
      keyring=/usr/share/keyrings/debian-archive-keyring.gpg
      echo "deb [signed-by=$keyring] $(_deb_debian_mirror) sid main" >"$work/sources.list"
      ;;
    noble)
      mkdir -p "$work/keyring"
      deb_setup "$work/keyring" sid
      deb_unpack "$work/keyring" "$work/keyring/root" ubuntu-keyring
      keyring=$work/keyring/root/usr/share/keyrings/ubuntu-archive-keyring.gpg
      local mirror=${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu} s
      : >"$work/sources.list"
      for s in noble noble-updates noble-security; do
        echo "deb [signed-by=$keyring] $mirror $s main" >>"$work/sources.list"
      done
      ;;
    *)
      echo "deb_setup: unknown suite $suite (sid or noble)" >&2
      return 2
      ;;
  esac
  DEB_OPTS=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
    -o "Dir::State::Lists=$work/lists" -o "Dir::State::status=$work/status"
    -o "Dir::Cache=$work" -o "Dir::Cache::archives=$work/archives"
    -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o APT::Sandbox::User=root)
  : >"$work/status"  # an empty dpkg status: nothing counts as installed
  apt-get "${DEB_OPTS[@]}" -qq update
}

# the Debian mirror this machine's apt uses
_deb_debian_mirror() {
  local mirror
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "$mirror"
}

# deb_depends PACKAGE: the package names the Depends line of its candidate version lists
# (no versions, no alternatives)
deb_depends() {
  local version
  version=$(apt-cache "${DEB_OPTS[@]}" policy "$1" | awk '/Candidate:/ {print $2; exit}')
  apt-cache "${DEB_OPTS[@]}" show "$1=$version" | awk -F': ' '/^Depends:/ {print $2; exit}' \
    | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/ //g'
}

# deb_unpack WORK ROOT PACKAGE...: download the packages' candidate versions and unpack
# them into ROOT
deb_unpack() {
  local work=$1 root=$2 deb
  shift 2
  (cd "$work/debs" && apt-get "${DEB_OPTS[@]}" -qq download "$@")
  mkdir -p "$root"
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
}

# deb_check ROOT BINARY NAME: fail if BINARY (under ROOT) misses a library; print its version
deb_check() {
  local libs="$1/usr/lib/x86_64-linux-gnu"
  local run=("$libs/ld-linux-x86-64.so.2" --library-path "$libs:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu")
  if "${run[@]}" --list "$1/$2" | grep 'not found'; then
    echo "$3: libraries missing (above): install them from Debian 12 or add them here" >&2
    return 1
  fi
  "${run[@]}" "$1/$2" --version
}

# deb_place STAGE ROOT: put the checked STAGE in ROOT's place (an old ROOT is replaced
# whole), so that a failed download or check never leaves a half root for tests to find
deb_place() {
  rm -rf "$2"
  mv "$1" "$2"
}
