#!/usr/bin/python3
"""The real application window under Xvfb: open a dump, take a screenshot, check it is
not blank (many distinct colours, not one flat colour)."""
import subprocess
import sys
import tempfile

from PIL import Image

app, dump = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as tmp:
    shot = f"{tmp}/shot.png"
    env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "XDG_RUNTIME_DIR": tmp}
    r = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", app, "--screenshot", shot, dump],
                       capture_output=True, text=True, timeout=180, env=env)
    if r.returncode != 0:
        sys.exit(f"quantscope --screenshot failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    img = Image.open(shot).convert("RGB")
    w, h = img.size
    colours = len(set(img.getdata()))
    print(f"screenshot {w}x{h}, {colours} distinct colours")
    if w < 800 or h < 600:
        sys.exit("screenshot too small")
    if colours < 200:
        sys.exit("screenshot looks blank")
    # the heatmaps are on the right half: that region must hold many saturated colours
    # (text and frames are greys, whatever their anti-aliasing: they cannot pass this)
    import colorsys
    right = img.crop((w // 3, h // 8, w - 10, h * 3 // 4))
    saturated = {c for c in set(right.getdata()) if colorsys.rgb_to_hsv(*[v / 255 for v in c])[1] > 0.35}
    print(f"heatmap region: {len(saturated)} saturated colours")
    if len(saturated) < 40:
        sys.exit("no heatmaps drawn")
print("1 passed, 0 failed")
