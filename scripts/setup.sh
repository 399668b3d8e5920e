#!/usr/bin/env bash
# Installs what building and testing tracemap needs on a fresh Debian machine:
# libclang (RocksDB's bindings are generated with bindgen), protoc (our storage
# schema in proto/), Node.js and npm (the build bundles the web UI in web/),
# Chromium (the UI's browser tests), and a Python virtualenv with the
# OpenTelemetry SDK and its OTLP exporters (the test clients). Safe to run
# again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${TRACEMAP_VENV:-$HOME/.cache/tracemap/venv}"

need_apt=()
dpkg -s libclang1-14 >/dev/null 2>&1 || need_apt+=(libclang1-14)
dpkg -s libclang-common-14-dev >/dev/null 2>&1 || need_apt+=(libclang-common-14-dev)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

stamp="$VENV/.requirements"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s tests/python/requirements.txt "$stamp"; then
  echo "setup: creating the Python test client venv in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt "$stamp"
fi
