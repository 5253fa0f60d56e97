#!/bin/sh
# ephemeral-job.sh: a CI job as one shell script: bring up a pool for this run, run a command on
# each clone over SSH (one claim per parallel job, released after), and tear the pool down
# whatever happens (trap). Needs vdipool, jq, ssh.
# Usage: ephemeral-job.sh SPEC.yaml COMMAND...     e.g. ephemeral-job.sh examples/ci-ephemeral.yaml uname -a
set -eu
SPEC=$1
shift
RUN=${CI_PIPELINE_ID:-$$}
POOLS=${POOLS:-/var/lib/vdipool/ci-pools}
MINE=$POOLS/run$RUN.yaml
OUT=$(mktemp)

mkdir -p "$POOLS"
# A pool of this run's own: the pool's name (and so its clone names) carry the run's id.
NAME=$(sed -n 's/^  name: *//p' "$SPEC" | head -n 1)
sed "s/$NAME/run$RUN/g" "$SPEC" >"$MINE"
# Torn down at the end, also after a failure; if this shell is killed, the --ttl and the host's
# timer (vdipool release --expired) take it down.
trap 'vdipool -q down "$MINE"; rm -f "$MINE" "$OUT"' EXIT

vdipool up --ttl 1h --timeout 10m -o json "$MINE" >"$OUT"
echo "pool $(jq -r .pool "$OUT") is up until $(jq -r .expires "$OUT"): $(jq -r '[.clones[].name] | join(" ")' "$OUT")"

# One job per clone, in parallel: each claims a clone (so no two jobs share one), runs the
# command on it over SSH and releases it (a fresh delta: the next job finds it pristine).
PIDS=
for i in $(seq "$(jq .count "$OUT")"); do
	(
		C=$(vdipool claim --for "run$RUN/job$i" --ttl 30m -o json "$MINE")
		ADDR=$(printf '%s' "$C" | jq -r .address)
		echo "== job $i on $(printf '%s' "$C" | jq -r .name) at $ADDR"
		rc=0
		ssh -o StrictHostKeyChecking=no -o BatchMode=yes "ci@$ADDR" "$@" || rc=$?
		vdipool -q release "$(printf '%s' "$C" | jq -r .name)"
		exit $rc
	) &
	PIDS="$PIDS $!"
done
FAIL=0
for p in $PIDS; do wait "$p" || FAIL=1; done
exit $FAIL
