#!/usr/bin/env bash
# Regenerates the measurements of docs/accuracy.md: every shipped detector ×
# recogniser × setting on the shared real photo sets, through
# `visage bench accuracy` (definitions in
# crates/visage-cli/src/commands/bench/accuracy.rs).
#
#   scripts/accuracy/table.sh [OUT_DIR]      (default: target/accuracy)
#
# Writes OUT_DIR/table.md and OUT_DIR/table.json, and puts the tables into
# docs/accuracy.md between its table markers.
# VISAGE_BIN=<path> uses that binary instead of building target/release/visage
# (the figures do not depend on the build profile; the seconds column does).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/target/accuracy}"
mkdir -p "$out"
cd "$root"
if [ -n "${VISAGE_BIN:-}" ]; then
  visage="$VISAGE_BIN"
else
  cargo build --release -p visage-cli
  visage="$root/target/release/visage"
fi

P=arcface_mobileface_128d_paddle_fastprelu
FIX=face_detection_yunet_2023mar            # fixed 640×640 input, letterboxed
DYN=face_detection_yunet_2023mar_dynamic    # the same weights on the photo's own size (the default's detector)
chains=(
  default
  # the default recogniser behind each detector, no second looks
  "$FIX/$P" "$DYN/$P" "face_detection_yunet_2026may/$P" "scrfd/$P" "scrfd_500m_bnkps/$P"
  # each lever alone, on the fixed and the dynamic YuNet
  "$FIX/$P+pad" "$FIX/$P+refine" "$FIX/$P+flip" "$FIX/$P+pad+refine"
  "$DYN/$P+pad" "$DYN/$P+refine" "$DYN/$P+flip" "$DYN/$P+quality"
  "$DYN/$P+pad+refine+flip"
  # the other recognisers behind the default detector and settings
  "$DYN/faceplugin_fr_feature_512d+pad+refine+flip+quality"
  "$DYN/mobilefacenet_128d_pixamatch+pad+refine+flip+quality"
  # the best licence-restricted chain, for reference
  "scrfd/$P+refine+flip+quality"
)
IFS=,
"$visage" bench accuracy --data "$root/../shared/data" --sets faces,faces_small,faces_dev,faces_dev.a,faces_dev.b \
  --chains "${chains[*]}" --markdown "$out/table.md" --json "$out/table.json" > /dev/null
# The tables between the markers of docs/accuracy.md are replaced by the new ones.
doc="$root/docs/accuracy.md"
awk -v table="$out/table.md" '
  /^<!-- table: scripts\/accuracy\/table.sh -->$/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /^<!-- \/table -->$/ { skip = 0 }
  !skip { print }
' "$doc" > "$doc.tmp" && mv "$doc.tmp" "$doc"
echo "wrote $out/table.md and $out/table.json; updated docs/accuracy.md"
