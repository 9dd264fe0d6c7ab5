"""dvc.yaml's promise: each stage lists the library modules it imports, so editing shared
code re-runs exactly the stages it affects."""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def fer_imports(path: Path) -> set[str]:
    """Files of the `fer` modules that `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fer":
            found.add(node.module)
            if node.module == "fer":  # from fer import formats, kdef
                found |= {f"fer.{a.name}" for a in node.names if (REPO / "src/fer" / f"{a.name}.py").exists()}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fer"}
    return {f"src/{m.replace('.', '/')}.py" if m != "fer" else "src/fer/__init__.py" for m in found}


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_lists_every_module_it_imports(name):
    stage = STAGES[name].get("do", STAGES[name])  # a foreach stage: the template of each run
    script = stage["cmd"].split()[1]
    needed, todo = {"src/fer/__init__.py", script}, [script]
    while todo:
        for module in fer_imports(REPO / todo.pop()) - needed:
            needed.add(module)
            todo.append(module)
    listed = {d for d in stage["deps"] if isinstance(d, str) and d.startswith("src/")}
    assert needed - listed == set(), f"stage {name} imports but does not list them"
    assert listed - needed == set(), f"stage {name} lists modules it does not import"
