# Shared by check.sh and check_decrypted.sh (sourced, not run): the argument checks, a
# scratch directory and `shark`, tshark with the rotorlink dissector that fails on any error.
#
# The sourcing script sets `name` (for messages) and `usage` (its argument) first.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dissector="${ROTORLINK_DISSECTOR:-$here/rotorlink.lua}"

fail() {
    printf '%s: %s\n' "$name" "$*" >&2
    exit 1
}

[ $# -eq 1 ] || { echo "usage: $name $usage" >&2; exit 2; }
capture="$1"
command -v tshark >/dev/null || fail "tshark is not installed (apt-get install tshark)"
[ -r "$capture" ] || fail "cannot read $capture"
[ -r "$dissector" ] || fail "cannot read the dissector $dissector"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# tshark with the dissector, quiet about running as root.
shark() {
    if ! tshark -X "lua_script:$dissector" -r "$capture" "$@" >"$work/out" 2>"$work/err"; then
        grep -v 'Running as user' "$work/err" >&2 || true
        fail "tshark failed (a field the dissector does not define, or an unreadable capture)"
    fi
    if grep -v 'Running as user' "$work/err" | grep -q .; then
        grep -v 'Running as user' "$work/err" >&2
        fail "tshark printed errors (a Lua error in the dissector?)"
    fi
    cat "$work/out"
}
