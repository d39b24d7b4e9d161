#!/usr/bin/env bash
# Regenerates the simulated run that docs/plan-run-report.md prints (every step, into runs/demo/).
# Usage: bash scripts/plan_run_report.sh   (a few minutes on one core; replaces runs/demo/study and analysis)
set -euo pipefail
cd "$(dirname "$0")/.."
PRSR="${PRSR:-.venv/bin/prsr}"
PY="${PY:-.venv/bin/python}"
rm -rf runs/demo/study runs/demo/analysis runs/demo/analysis_staircase
mkdir -p runs/demo/study
"$PY" -c "from study_app.demo import write_demo_predictions as w; w('runs/demo/predictions', n=300)"
RATES=(--fool-rate resnet_l2=0.05 --fool-rate gan=0.10 --fool-rate pixel_recursive_t1.0=0.20)

echo "== 1. plan"
"$PRSR" study plan "${RATES[@]}" --n-images 300 --target-power 0.8 --pay-per-hour 12
echo "== 2. init"
"$PRSR" study init --predictions runs/demo/predictions --db runs/demo/study/study.db \
    --raters-per-method 40 --attention-max-misses 1 --seed 2
"$PRSR" study prereg --db runs/demo/study/study.db | sed -n '1,40p'
echo "== 3. pilot and re-plan"
"$PRSR" study init --predictions runs/demo/predictions --db runs/demo/study/pilot.db --raters-per-method 8 \
    --attention-max-misses 1
"$PRSR" study simulate --db runs/demo/study/pilot.db --raters 24 "${RATES[@]}" --golden-fail-rate 0.05
"$PRSR" study plan --pilot runs/demo/study/pilot.db --n-images 300 --target-power 0.8 --pay-per-hour 12
echo "== 4. serve (simulated) and export"
"$PRSR" study simulate --db runs/demo/study/study.db --raters 120 "${RATES[@]}" --golden-fail-rate 0.05 \
    --abandon-rate 0.05 --seed 2
"$PRSR" study export --db runs/demo/study/study.db --out runs/demo/study/export
echo "== 5. analyze against the plan"
"$PRSR" analyze --db runs/demo/study/study.db --out runs/demo/analysis
"$PRSR" analyze --db runs/demo/study/study.db --out runs/demo/analysis_deviation --exposure-tolerance-ms 40 --no-glmm \
    | grep -A3 DEVIATIONS
echo "== HYPE-time"
"$PRSR" study init --predictions runs/demo/predictions --db runs/demo/study/staircase.db --raters-per-method 20 \
    --exposure staircase --methods resnet_l2,gan,pixel_recursive_t1.0 --seed 3
"$PRSR" study simulate --db runs/demo/study/staircase.db --raters 60 --threshold-ms resnet_l2=200 \
    --threshold-ms gan=300 --threshold-ms pixel_recursive_t1.0=450 --seed 3
"$PRSR" analyze --db runs/demo/study/staircase.db --out runs/demo/analysis_staircase --no-glmm | grep -A4 HYPE-time
