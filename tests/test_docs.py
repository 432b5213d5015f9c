"""The design document stays true: every module under i2v/ is named in docs/ARCHITECTURE.md, and no product
file refers to material outside the repository."""
import subprocess

from tests.conftest import ROOT


def test_every_module_is_listed_in_the_architecture_document():
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "i2v").rglob("*.py"))
    missing = [m for m in modules if f"`{m}`" not in doc and not (m.startswith("i2v/core/__init__")
                                                                  and "`i2v/core/`" in doc)]
    assert missing == []


def test_nothing_in_the_product_points_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    offenders = []
    for name in tracked:
        if name.startswith("tests/") or name.endswith((".png", ".json", ".mp4")):
            continue
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        if "../shared" in text or "FACTS.md" in text:
            offenders.append(name)
    assert offenders == []


def test_no_build_output_is_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [n for n in tracked if ".egg-info/" in n or n.endswith((".pyc", ".pyi")) or "__pycache__" in n]
