#!/usr/bin/env bash
# A comparison over a large image set as a Slurm array job: N tasks, each running
# `quantscope-cli compare --shard I/N` on every N-th image, then one job that merges the N
# dumps once all of them succeeded (sbatch --dependency=afterok). A failed task can be
# rerun alone (--only I) and the merge submitted again (--merge-only).
#
#   quantscope-sharded.sh --shards N --workdir DIR --out RUN.h5 [--wait] [--only I] [--merge-only]
#                         [--sbatch "extra sbatch options"] -- COMPARE OPTIONS...
#
# COMPARE OPTIONS are those of `quantscope-cli compare` without --out and --shard (e.g.
# --original A.pt --quantized B.pt --images DIR --threads 2). Shard I is written to
# DIR/shard-I.h5, its log to DIR/shard-I.log. With --wait the script returns when the
# merge job ends, with its exit status. QS_CLI names quantscope-cli (default: on PATH).
set -euo pipefail
shards= workdir= out= wait= only= mergeOnly= extra=
while [[ $# -gt 0 ]]; do
    case $1 in
        --shards) shards=$2; shift 2 ;;
        --workdir) workdir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --wait) wait=1; shift ;;
        --only) only=$2; shift 2 ;;
        --merge-only) mergeOnly=1; shift ;;
        --sbatch) extra=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "quantscope-sharded.sh: unknown option $1 (compare's options go after --)" >&2; exit 2 ;;
    esac
done
if [[ -z $shards || -z $workdir || -z $out ]] || ! [[ $shards =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: quantscope-sharded.sh --shards N --workdir DIR --out RUN.h5 [--wait] [--only I] [--merge-only] -- COMPARE OPTIONS" >&2
    exit 2
fi
cli=${QS_CLI:-quantscope-cli}
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
quote() { printf '%q ' "$@"; }   # words, each followed by a space
one() { printf '%q' "$1"; }       # one word
compare_args=$(quote "$@")

dependency=
if [[ -z $mergeOnly ]]; then
    range=0-$((shards - 1))
    [[ -n $only ]] && range=$only
    # one task per shard; SLURM_ARRAY_TASK_ID picks the shard
    array=$(sbatch --parsable $extra --job-name=qs-shard --array="$range" \
        --output="$workdir/shard-%a.log" \
        --wrap="$(one "$cli") compare $compare_args--shard \${SLURM_ARRAY_TASK_ID}/$shards --out $(one "$workdir")/shard-\${SLURM_ARRAY_TASK_ID}.h5 --quiet")
    dependency=--dependency=afterok:${array%%;*}
    echo "submitted array job $array ($range of $shards shards)"
fi
files=
for ((i = 0; i < shards; i++)); do files+="$(quote "$workdir/shard-$i.h5")"; done
# a failed shard cancels the merge instead of leaving it pending for ever
merge=$(sbatch --parsable $extra $dependency --kill-on-invalid-dep=yes ${wait:+--wait} --job-name=qs-merge \
    --output="$workdir/merge.log" --wrap="$(one "$cli") merge $files--out $(one "$out") --quiet")
echo "submitted merge job $merge -> $out"
