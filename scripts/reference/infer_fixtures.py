"""Fixtures for visage-image's decoder tests, made with Pillow (an independent
JPEG encoder): a CMYK JPEG (as print workflows and some stock photos store
them, Adobe APP14 with inverted CMYK) whose left half is pure red and right
half pure blue.

    python3 -m pip install pillow && python3 scripts/reference/infer_fixtures.py
"""
from pathlib import Path

from PIL import Image

out = Path(__file__).resolve().parents[2] / "crates/visage-image/tests/fixtures"
out.mkdir(parents=True, exist_ok=True)

rgb = Image.new("RGB", (16, 8))
for x in range(16):
    for y in range(8):
        rgb.putpixel((x, y), (255, 0, 0) if x < 8 else (0, 0, 255))
rgb.convert("CMYK").save(out / "cmyk_red_blue.jpg", quality=100)
print("wrote", out / "cmyk_red_blue.jpg")
