"""The shipped type stubs (visage/__init__.pyi) describe the module as it is:
mypy's stubtest compares every name, class and signature with the runtime."""

import subprocess
import sys

import visage


def test_the_stubs_match_the_runtime(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mypy.stubtest", "visage"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, f"stubtest (mypy is installed by scripts/python/test.sh):\n{done.stdout}\n{done.stderr}"
    assert "Success" in done.stdout


def test_every_public_name_is_documented():
    undocumented = []
    for name in visage.__all__:
        value = getattr(visage, name)
        if isinstance(value, type) or callable(value):
            if not (value.__doc__ or "").strip():
                undocumented.append(name)
            for attribute, member in vars(value).items() if isinstance(value, type) else []:
                if not attribute.startswith("_") and not (getattr(member, "__doc__", "") or "").strip():
                    undocumented.append(f"{name}.{attribute}")
    assert undocumented == []
