"""i2v.core (and the config loader) must stay torch-free: importing them pulls in no heavy library."""
import subprocess
import sys

CORE_MODULES = ("i2v.core", "i2v.core.settings", "i2v.core.request", "i2v.core.units", "i2v.core.memory",
                "i2v.core.clamp", "i2v.core.fallback", "i2v.core.presets", "i2v.core.tiers", "i2v.core.tables",
                "i2v.configs")
FORBIDDEN = ("torch", "gradio", "diffusers", "transformers", "numpy")


def test_core_imports_no_heavy_library():
    code = (f"import sys\nfor m in {CORE_MODULES!r}: __import__(m)\n"
            f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"


def test_gpu_and_profile_modules_import_nothing_heavy_at_import():
    code = ("import sys, i2v.gpu, i2v.profile, i2v.cli_memory\n"
            "print(','.join(m for m in ('torch', 'diffusers', 'pynvml') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
