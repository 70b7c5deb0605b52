# Helpers shared by the check scripts in .ci/ (sourced, not run).

log() { printf '\n== %s\n' "$*"; }

# Runs "$@" only when the stamp file does not hold exactly this spec, then writes it.
stamped() {
  local stamp="$1" spec="$2"
  shift 2
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
    return 0
  fi
  "$@"
  printf '%s' "$spec" >"$stamp"
}

# Installs, as root through apt, the Debian packages ($2, $4, ...) of the commands ($1, $3, ...)
# that are missing; says what to install where it cannot.
need_commands() {
  local missing=()
  while (($# >= 2)); do
    command -v "$1" >/dev/null || missing+=("$2")
    shift 2
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
}

# (Re)creates the virtualenv $1 with the pinned Python packages that follow.
make_venv() {
  local venv="$1"
  shift
  # Debian splits venv out of python3.
  python3 -c 'import ensurepip, venv' 2>/dev/null || need_commands __python3_venv__ python3-venv
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

# Runs "$@" as the check named $1 and records how it ended in RESULTS ("ok"/"FAIL" and its
# seconds), counting failures in FAILED; the caller declares both and prints RESULTS at the end.
checked() {
  local name="$1" start=$SECONDS status
  shift
  log "$name"
  set +e
  "$@"
  status=$?
  set -e
  if [[ "$status" == 0 ]]; then
    RESULTS+=("ok    $name ($((SECONDS - start))s)")
  else
    RESULTS+=("FAIL  $name ($((SECONDS - start))s)")
    FAILED=$((FAILED + 1))
  fi
}

# Installs cargo subcommand $1 (crate cargo-$1) at version $2 with `cargo install --locked`,
# unless `cargo $1 --version` already says so. It builds in a scratch target directory, so the
# workspace's build is not touched and the intermediate files go away.
cargo_tool() {
  local tool="$1" version="$2" build
  if [[ "$(cargo "$tool" --version 2>/dev/null || true)" != "cargo-$tool $version" ]]; then
    build="$(mktemp -d)"
    nice -n 19 cargo install "cargo-$tool" --locked --version "$version" --target-dir "$build" || { rm -rf "$build"; return 1; }
    rm -rf "$build"
  fi
  cargo "$tool" --version
}
