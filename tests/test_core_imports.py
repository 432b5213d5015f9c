"""i2v.core (and the config loader) must stay torch-free: importing them pulls in no heavy library."""
import pkgutil
import subprocess
import sys

import i2v.core

# Every module of the package, so a new one is covered without editing this list.
CORE_MODULES = ("i2v.core", *(f"i2v.core.{m.name}" for m in pkgutil.iter_modules(i2v.core.__path__)), "i2v.configs")
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


def test_web_server_modules_import_no_torch():
    """The web server (UI, service, worker supervisor, advisor) must not even import torch or diffusers."""
    code = ("import sys, i2v.cli, i2v.ui, i2v.service, i2v.worker, i2v.advisor\n"
            "print(','.join(m for m in ('torch', 'diffusers', 'transformers', 'ray') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_local_backend_never_imports_ray():
    """Ray is an optional extra: building the local service (the default backend) must not import it."""
    code = ("import os, sys, tempfile\n"
            "os.environ['I2V_OUTPUTS'] = os.environ['I2V_LOGS'] = tempfile.mkdtemp()\n"
            "from i2v import cli\n"
            "args = cli.build_parser().parse_args(['serve', '--model', 'tiny'])\n"
            "service = cli.make_service(args.model, args.gpus, args.backend, args.ray_address)\n"
            "print(args.backend, 'ray' in sys.modules, type(service.runner).__name__)\n"
            "service.runner.shutdown()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["local", "False", "WorkerPool"], result.stdout + result.stderr
