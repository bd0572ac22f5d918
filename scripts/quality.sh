#!/usr/bin/env bash
# Clustering quality of the shipped defaults on Banking77 (../shared/data/banking77), scored with
# scikit-learn's AMI and ARI against the labelled intents (tests/quality/score.py).
#   scripts/quality.sh           print the figures for seeds $QUALITY_SEEDS (default 1,2,3)
#   scripts/quality.sh --floor   also fail when a figure falls below the suite's floor
# Needs a built build/service/painpoint (scripts/test.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-embeddings.sh
seeds=${QUALITY_SEEDS:-1,2,3}
floors=()
if [[ "${1:-}" == --floor ]]; then
  # Just below what the defaults measure on every seed (see aggregator/README.md), so a real
  # regression fails the suite while run-to-run noise does not.
  floors=(--min-ami 0.59 --min-ari 0.27 --min-clusters 40 --max-clusters 210)
fi
exec /usr/bin/python3 tests/quality/score.py --painpoint build/service/painpoint --seeds "$seeds" \
  "${floors[@]}"
