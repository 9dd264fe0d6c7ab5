"""dvc.yaml's promise: each stage lists the library code it imports (module files, or a
folder whose every module it imports), so editing shared code re-runs exactly the stages
it affects."""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The file of module `name` (e.g. fer.data.split), or None if it names no module."""
    base = SRC / name.replace(".", "/")
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def fer_imports(path: Path) -> set[Path]:
    """Files of the `fer` modules that `path` imports, anywhere in it, with the packages they sit in."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fer":
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "fer"}
    packages = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
    return {module_file(n) for n in names | packages if module_file(n)}


def listed_files(stage: dict) -> set[Path]:
    """The code files a stage's deps name: files, and every module in a folder named."""
    out = set()
    for dep in stage["deps"]:
        path = REPO / dep if isinstance(dep, str) and dep.startswith("src/") else None
        if path is not None:
            out |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return out


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_lists_every_module_it_imports(name):
    stage = STAGES[name].get("do", STAGES[name])  # a foreach stage: the template of each run
    script = REPO / stage["cmd"].split()[1]
    needed, todo = {script}, [script]
    while todo:
        for module in fer_imports(todo.pop()) - needed:
            needed.add(module)
            todo.append(module)
    listed = listed_files(stage)
    assert needed - listed == set(), f"stage {name} imports but does not list them"
    assert listed - needed == set(), f"stage {name} lists modules it does not import"
