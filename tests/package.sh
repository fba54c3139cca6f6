#!/usr/bin/env bash
# The Debian package, end to end: scripts/package builds it from the debug build the test suite made,
# dpkg installs it, and the installed fleetop, its man pages and its completions answer. The package is
# removed again afterwards. Run by scripts/test after the cargo tests.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
fail() { echo "tests/package.sh: $*" >&2; exit 1; }

if dpkg -s fleetop >/dev/null 2>&1; then
  fail "a fleetop package is already installed here; this test installs and removes its own"
fi
rm -rf target/debian
scripts/package --dev >/dev/null
deb=$(ls target/debian/fleetop_*.deb)
[ "$(echo "$deb" | wc -l)" -eq 1 ] || fail "expected one .deb, got: $deb"

trap '$sudo dpkg -r fleetop >/dev/null 2>&1 || true' EXIT
$sudo dpkg -i "$deb" >/dev/null

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
said=$(/usr/bin/fleetop --version)
case "$said" in
  "fleetop $version (build "*) ;;
  *) fail "/usr/bin/fleetop --version said: $said" ;;
esac
/usr/bin/fleetop agent --version | grep -q "^fleetop-agent $version" || fail "agent --version"

page=$(man -w fleetop) || fail "man -w fleetop found nothing"
[ "$page" = /usr/share/man/man1/fleetop.1.gz ] || fail "man -w fleetop: $page"
man -w fleetop-deploy >/dev/null || fail "no man page for fleetop deploy"
MANWIDTH=100 man fleetop 2>/dev/null | grep -q "Live GPU fleet monitor" || fail "man fleetop does not render"

# bash loads the completion and offers the subcommands.
words=$(bash -c 'source /usr/share/bash-completion/completions/fleetop
  COMP_WORDS=(fleetop dep); COMP_CWORD=1; _fleetop fleetop dep fleetop; echo "${COMPREPLY[*]}"')
[ "$words" = "deploy" ] || fail "bash completion of 'fleetop dep' gave: $words"
[ -s /usr/share/zsh/vendor-completions/_fleetop ] || fail "no zsh completion"
[ -s /usr/share/fish/vendor_completions.d/fleetop.fish ] || fail "no fish completion"
[ -s /usr/share/doc/fleetop/examples/inventory.toml ] || fail "no example inventory"
grep -q '^ExecStart=/usr/bin/fleetop agent --listen ' /lib/systemd/system/fleetop-agent.service \
  || fail "no systemd unit for the agent"
/usr/bin/fleetop check --inventory /usr/share/doc/fleetop/examples/inventory.toml >/dev/null \
  || fail "the example inventory does not check"

$sudo dpkg -r fleetop >/dev/null
[ ! -e /usr/bin/fleetop ] || fail "dpkg -r left /usr/bin/fleetop"
trap - EXIT
echo "tests/package.sh: ok ($(basename "$deb"))"
