#!/usr/bin/env bash
# Runs tests (default: tests/unit tests/integration) on the Python minor version of the Lambda runtime the stack
# deploys (RUNTIME in infra/constructs/functions.py; RUNTIME_PYTHON=3.13 overrides it), with the Lambda-side
# packages at the versions of layers/common/requirements.txt. This machine's Python stays as it is: the interpreter
# comes from a Debian root tree in .runtime-py3XX/ (debootstrap, cached), the packages are wheels that uv picks for
# that Python and installs into the tree's /opt/deps, and pytest runs chrooted into the tree with the project
# bind-mounted at /src, in a mount namespace of its own, so no mount outlives the run. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"
export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
UV="${UV:-$ROOT/.venv/bin/uv}"
HOST_PY="${HOST_PY:-$ROOT/.venv/bin/python}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

say() { echo "test-runtime: $*" >&2; }

minor="${RUNTIME_PYTHON:-$(sed -n 's/^RUNTIME = lambda_\.Runtime\.PYTHON_3_\([0-9][0-9]*\)$/3.\1/p' infra/constructs/functions.py)}"
# The oldest Debian suite whose python3.X package is that minor version (bookworm's debootstrap knows trixie but not
# forky, so every suite is bootstrapped with the `sid` script, which they all share).
case "$minor" in
    3.13) suite=trixie ;;
    3.14) suite=forky ;;
    "") say "no 'RUNTIME = lambda_.Runtime.PYTHON_3_N' in infra/constructs/functions.py"; exit 2 ;;
    *) say "no Debian suite known for Python $minor: add it to .ci/runtime-python.sh"; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
    say "needs root (debootstrap, chroot, a mount namespace): run it as root, e.g. sudo make test-runtime"
    exit 2
fi
[ -x "$UV" ] && [ -x "$HOST_PY" ] || { say "run make install first"; exit 2; }

TREE="$ROOT/.runtime-py${minor/./}"
PY="python$minor"

# 1. The root tree: a minimal Debian with python3.X only (no pip there; the packages come in step 2).
if [ ! -e "$TREE/.tree-ready" ]; then
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    say "bootstrapping Debian $suite with $PY into $TREE (about 40 s, 290 MB)"
    rm -rf --one-file-system "$TREE"
    debootstrap --variant=minbase --include="$PY" "$suite" "$TREE" "$MIRROR" /usr/share/debootstrap/scripts/sid \
        >"$TREE.debootstrap.log" 2>&1 || { tail -20 "$TREE.debootstrap.log" >&2; exit 1; }
    rm -f "$TREE.debootstrap.log"
    # Lambda's interpreter is /var/lang/bin/python3, which the layer's shutdown extension looks for first.
    mkdir -p "$TREE/var/lang/bin" "$TREE/src" "$TREE/opt"
    ln -sf "/usr/bin/$PY" "$TREE/var/lang/bin/python3"
    touch "$TREE/.tree-ready"
fi

# 2. The packages: layers/common/requirements.txt (what functions get in Lambda) plus the test tools at pyproject's
# pins; reinstalled whenever that list changes.
requirements="$TREE/opt/requirements.txt"
{
    grep -v '^\s*#' layers/common/requirements.txt | sed '/^\s*$/d'
    "$HOST_PY" - <<'EOF'
import re
import tomllib

with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
extras = project["optional-dependencies"]
for spec in project["dependencies"] + extras["local"] + extras["dev"]:
    if re.split(r"[\[=<>!~ ;]", spec, maxsplit=1)[0].lower() in {"pytest", "pytest-timeout", "moto", "pyyaml", "openai", "hypothesis"}:
        print(spec)
EOF
} | sort -u >"$requirements.new"
platform="$(uname -m)-manylinux_2_28"
stamp="$TREE/opt/.deps-$( (cat "$requirements.new"; echo "$platform") | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    say "installing $(wc -l <"$requirements.new") pinned packages for Python $minor ($platform) into $TREE/opt/deps"
    rm -rf "$TREE/opt/deps" "$TREE"/opt/.deps-*
    "$UV" pip install --quiet --target "$TREE/opt/deps" --python-version "$minor" --python-platform "$platform" \
        --only-binary :all: -r "$requirements.new"
    touch "$stamp"
fi
mv "$requirements.new" "$requirements"

# 3. The run. Bytecode goes into the tree (PYTHONPYCACHEPREFIX), never into the project; pytest's exit status is
# the script's (5, no test collected, included).
[ "$#" -gt 0 ] || set -- tests/unit tests/integration
version="$(chroot "$TREE" "/usr/bin/$PY" -c 'import platform; print(platform.python_version())')"
echo "python $version (Lambda runtime python$minor: Debian $suite tree $(basename "$TREE"), layers/common/requirements.txt)"
exec unshare --mount --propagation private /bin/sh -c '
    project="$1" tree="$2"; shift 2
    mount --bind "$project" "$tree/src" && mount -t proc proc "$tree/proc" || exit 1
    exec chroot "$tree" /usr/bin/env -i -C /src \
        PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 TZ=UTC \
        PYTHONPATH=/opt/deps:/src/layers/common/python PYTHONPYCACHEPREFIX=/var/cache/pycache \
        python3 -m pytest -v -p no:cacheprovider "$@"
' sh "$ROOT" "$TREE" "$@"
