#!/usr/bin/env bash
# The long benchmark runs, one after another, so that the 2 cores are never idle and never shared
# by two runs (each run uses both: two 1-thread workers). Every command resumes where it stopped:
# after an interruption, start this script again with the same arguments; finished runs only
# re-summarise (seconds).
#
#   setsid nohup benchmarks/run_queue.sh > runs/queue.log 2>&1 &
#
# To pause it (for the test suite, say) stop the whole process group: the pool's workers start
# mace_run_train as child processes, which outlive a killed pool and keep both cores busy.
#   kill -- -$(ps -o pgid= -p $(pgrep -f run_queue.sh) | tr -d ' ')
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SEEDS="10 11 12 13 14 15 16 17 18 19"

# 1. Issue 28, items 4-5: the prespecified run (benchmarks/results/stability/prespecified/PLAN.md).
$PY benchmarks/stability/run_all.py --preset cpu --seeds $SEEDS \
    --molecules paracetamol novec7000 chlorophenylacetic-acid dimethylaminopropionitrile \
    --out runs/stability_prespecified --results benchmarks/results/stability/prespecified --workers 2

# 2. Issue 28, item 6, candidate 1: the peptide with the same design (coverage by design, 10 models).
$PY benchmarks/stability/run_all.py --preset cpu --seeds $SEEDS --molecules ac-ala-nhme \
    --out runs/stability_peptide_coverage --results benchmarks/results/stability/peptide_coverage --workers 2
