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
# (kill -STOP / -CONT with the same process group pauses and resumes it without losing a step.)
#
# Runs that last several sessions should not pick up code edited meanwhile (a prespecified run is
# one version of the method). Pin the code in a worktree and point the outputs back here:
#   git worktree add --detach ../queue HEAD
#   PY=$PWD/.venv/bin/python PYTHONPATH=$(realpath ../queue) RUNS=$PWD/runs \
#     RESULTS=$PWD/benchmarks/results setsid nohup ../queue/benchmarks/run_queue.sh > runs/queue.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs}
RESULTS=${RESULTS:-benchmarks/results}
SEEDS="10 11 12 13 14 15 16 17 18 19"

# 1. Issue 28, items 4-5: the prespecified run (benchmarks/results/stability/prespecified/PLAN.md).
$PY benchmarks/stability/run_all.py --preset cpu --seeds $SEEDS \
    --molecules paracetamol novec7000 chlorophenylacetic-acid dimethylaminopropionitrile \
    --out $RUNS/stability_prespecified --results $RESULTS/stability/prespecified --workers 2

# 2. Issue 28, item 6, candidate 1: the peptide with the same design (coverage by design, 10 models).
$PY benchmarks/stability/run_all.py --preset cpu --seeds $SEEDS --molecules ac-ala-nhme \
    --out $RUNS/stability_peptide_coverage --results $RESULTS/stability/peptide_coverage --workers 2

# 3. Issue 24: Table 1 at CPU scale, every stage but the viscosity (~19 h; benchmarks/liquid/table1_cpu.py --plan).
$PY benchmarks/liquid/table1_cpu.py --stages hmr smallbox dataset sizing model cost without fit with fig5 summary \
    --out $RUNS/table1_cpu --results $RESULTS/liquid/table1_cpu

# 4. Issue 28, item 6, the other candidates for the peptide, each on the same design (10 models x 8 starts):
#    bends per structure scaled up, twice the structures, a larger model. Skip them (comment out) if the
#    coverage run of step 2 already meets the target.
for candidate in "angles_per_structure=3" "n_frames=100" "training_preset='small'"; do
    tag=$(echo "$candidate" | tr -d "'" | tr '=' '-')
    $PY benchmarks/stability/run_all.py --preset cpu --seeds $SEEDS --molecules ac-ala-nhme --set "$candidate" \
        --out $RUNS/stability_peptide_$tag --results $RESULTS/stability/peptide_$tag --workers 2
done

# 5. Issue 24, item 6: the EMC viscosity row (~12 h at 180 atoms), last because it is the longest.
$PY benchmarks/liquid/table1_cpu.py --stages viscosity summary --out $RUNS/table1_cpu --results $RESULTS/liquid/table1_cpu
