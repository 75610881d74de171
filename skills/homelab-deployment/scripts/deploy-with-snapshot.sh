#!/usr/bin/env bash
# Deploy a service with a snapshot before it and a rollback path after it:
#   pre-flight health check -> pre-deploy snapshot -> deploy -> validate -> success, or auto-rollback.
# The snapshot, deploy, validation, outcome and rollback are done by `snapguard wrap`; this script adds
# the pre-flight check and a readable summary. Exit status: that of `snapguard wrap` (0 success,
# the deploy's or validation's status on failure), 2 when the pre-flight check finds a critical
# problem, 3 on bad usage.
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: deploy-with-snapshot.sh --volume ID [--volume ID...] --service NAME
                               [--validate 'CMD ARGS'] [--no-rollback] [--skip-health]
                               [--force] [--config FILE] -- DEPLOY_COMMAND [ARGS...]

  --volume ID      volume(s) the deployment changes (ids from snapguard.yaml)
  --service NAME   what is deployed; the operation is recorded as deploy-NAME
  --validate CMD   command that proves the service works (exit 0), e.g. 'curl -fsS http://127.0.0.1:2283/api/server/ping'
  --no-rollback    on failure keep the failed state and print how to recover instead of rolling back
  --skip-health    do not run the pre-flight health check
  --force          snapshot even when a recent one exists or the pool is nearly full
  --config FILE    snapguard configuration (default: $SNAPGUARD_CONFIG, ./snapguard.yaml, /etc/snapguard/snapguard.yaml)
USAGE
  exit 3
}

volumes=()
service=''
validate=''
rollback=1
health=1
force=0
config=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --volume) [[ $# -ge 2 ]] || usage; volumes+=("$2"); shift 2 ;;
    --service) [[ $# -ge 2 ]] || usage; service="$2"; shift 2 ;;
    --validate) [[ $# -ge 2 ]] || usage; validate="$2"; shift 2 ;;
    --no-rollback) rollback=0; shift ;;
    --skip-health) health=0; shift ;;
    --force) force=1; shift ;;
    --config) [[ $# -ge 2 ]] || usage; config=(--config "$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "deploy-with-snapshot: unknown option $1" >&2; usage ;;
  esac
done
[[ ${#volumes[@]} -gt 0 && -n "$service" && $# -gt 0 ]] || usage
if [[ ! "$service" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
  echo "deploy-with-snapshot: --service must be letters, digits, '.', '_' or '-'" >&2
  exit 3
fi
operation="deploy-${service,,}"
say() { echo "deploy-with-snapshot: $*" >&2; }

# 1. Pre-flight: a critical finding (pool full, device errors, a failed restore test, an unfinished
# recovery) stops the deployment. A missing or stale snapshot does not: the deployment takes one.
if [[ $health -eq 1 ]]; then
  command -v jq >/dev/null || { say "jq is needed for the pre-flight check (or pass --skip-health)"; exit 3; }
  for volume in "${volumes[@]}"; do
    status=0
    report=$(snapguard health "$volume" --no-record --json "${config[@]}") || status=$?
    if [[ $status -ge 3 ]]; then
      say "pre-flight health check of $volume could not run (exit $status): $(jq -r '.error.message // empty' <<<"$report")"
      exit 3
    fi
    blocking=$(jq -r '.findings[]
      | select(.severity == "critical" and (.code | IN("NO_SNAPSHOTS", "SNAPSHOT_STALE") | not))
      | "  \(.code): \(.message)\n    remedy: \(.remedy)"' <<<"$report")
    if [[ -n "$blocking" ]]; then
      say "pre-flight health check of $volume is critical: not deploying. Fix these or pass --skip-health:"
      echo "$blocking" >&2
      exit 2
    fi
    warnings=$(jq -r '.findings[] | select(.severity != "info") | "  \(.severity) \(.code): \(.message)"' <<<"$report")
    [[ -n "$warnings" ]] && { say "pre-flight health check of $volume, deploying anyway:"; echo "$warnings" >&2; }
  done
fi

# 2-5. Snapshot, deploy, validate, record the outcome, roll back on failure.
wrap=(snapguard wrap "${config[@]}" --deploy --operation "$operation")
for volume in "${volumes[@]}"; do wrap+=(--volume "$volume"); done
[[ -n "$validate" ]] && wrap+=(--validate "$validate")
[[ $rollback -eq 1 ]] && wrap+=(--auto-rollback)
[[ $force -eq 1 ]] && wrap+=(--force)
say "deploying $service (operation $operation) on ${volumes[*]}"
status=0
"${wrap[@]}" -- "$@" || status=$?
if [[ $status -eq 0 ]]; then
  say "$service deployed and validated; the pre-deploy snapshot is marked success"
elif [[ $rollback -eq 1 ]]; then
  say "$service failed (exit $status); the volumes were rolled back to the pre-deploy snapshot (see above)"
else
  say "$service failed (exit $status); nothing was rolled back. Recover with: snapguard recover (see above)"
fi
exit "$status"
