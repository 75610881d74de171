#!/usr/bin/env bash
# Change a configuration file under the protection of a snapshot: snapshot the volume holding it,
# apply the change, validate the service, and roll the volume back when validation fails.
# The change is either a new file (--from FILE, copied over --file) or a command (after --) that
# edits it in place. Exit status: 0 when the change is validated, that of the failing step
# otherwise (the volume is then rolled back), 3 on bad usage.
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: protect-config-change.sh --volume ID --file PATH --validate 'CMD ARGS'
                                (--from NEW_FILE | -- EDIT_COMMAND [ARGS...])
                                [--name NAME] [--config FILE]

  --volume ID      the snapguard volume that holds the file
  --file PATH      the configuration file being changed (must lie inside the volume)
  --from NEW_FILE  the new content, copied over PATH
  --validate CMD   command that proves the service works with the new configuration (exit 0)
  --name NAME      operation name (default: config-<file name>)
  --config FILE    snapguard configuration
USAGE
  exit 3
}

volume=''
file=''
from=''
validate=''
name=''
config=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --volume) [[ $# -ge 2 ]] || usage; volume="$2"; shift 2 ;;
    --file) [[ $# -ge 2 ]] || usage; file="$2"; shift 2 ;;
    --from) [[ $# -ge 2 ]] || usage; from="$2"; shift 2 ;;
    --validate) [[ $# -ge 2 ]] || usage; validate="$2"; shift 2 ;;
    --name) [[ $# -ge 2 ]] || usage; name="$2"; shift 2 ;;
    --config) [[ $# -ge 2 ]] || usage; config=(--config "$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "protect-config-change: unknown option $1" >&2; usage ;;
  esac
done
[[ -n "$volume" && -n "$file" && -n "$validate" ]] || usage
if [[ -n "$from" && $# -gt 0 ]] || [[ -z "$from" && $# -eq 0 ]]; then
  echo "protect-config-change: give either --from NEW_FILE or an edit command after --" >&2
  usage
fi
if [[ -n "$from" && ! -f "$from" ]]; then
  echo "protect-config-change: $from does not exist" >&2
  exit 3
fi
base=$(basename -- "$file")
name=${name:-config-${base,,}}
name=${name//[^a-z0-9._-]/-}

if [[ -n "$from" ]]; then
  # cp keeps the target's owner and mode; -- ends options so odd names stay names.
  set -- cp -- "$from" "$file"
fi
echo "protect-config-change: changing $file (operation $name) on volume $volume" >&2
status=0
snapguard wrap "${config[@]}" --volume "$volume" --operation "$name" --validate "$validate" \
  --auto-rollback -- "$@" || status=$?
if [[ $status -eq 0 ]]; then
  echo "protect-config-change: $file changed and validated" >&2
else
  echo "protect-config-change: the change failed (exit $status); $volume was rolled back to the snapshot taken before it" >&2
fi
exit "$status"
