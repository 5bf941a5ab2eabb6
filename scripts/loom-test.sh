#!/usr/bin/env bash
# Model tests of src/sync/ under loom (src/sync/models.rs): every
# interleaving of the primitives' atomics and locks. Built with
# `--cfg feedgate_loom` in a target directory of its own, so the main
# build's artifacts are not thrown away by the different flags.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FEEDGATE_ROOT"
CARGO_TARGET_DIR="$FEEDGATE_ROOT/target/loom" RUSTFLAGS="--cfg feedgate_loom" \
  cargo test --lib sync::models -- --test-threads 1
