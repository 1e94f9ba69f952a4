#!/bin/sh
# Installs the Debian packages listed in tools/deps.txt that are missing.
# Runs apt-get only when something is missing, so it is cheap to repeat.
set -eu
here=$(dirname "$0")
missing=""
for pkg in $(grep -v '^#' "$here/deps.txt"); do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
        grep -q 'install ok installed'; then
        missing="$missing $pkg"
    fi
done
# python3 may come from elsewhere than Debian (pyenv); accept any on PATH.
case " $missing " in
*" python3 "*) command -v python3 >/dev/null 2>&1 &&
    missing=$(echo "$missing" | sed 's/ python3//') ;;
esac
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing
fi
# Node packages the tests use as peers (Node's ws), from the lock file in
# tools/node, into tools/node/node_modules; only when they are missing.
if [ ! -d "$here/node/node_modules/ws" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        [ "$(id -u)" -ne 0 ] && sudo=sudo || sudo=""
        $sudo apt-get install -y -qq --no-install-recommends npm
    fi
    echo "deps: npm ci in tools/node"
    (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
