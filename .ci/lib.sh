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
