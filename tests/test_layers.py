"""v2m's layers: data flows one way (video -> analysis -> models -> render -> evaluate, with data and
train beside the models), and no module imports a layer above its own. The test reads every
module's imports (no module is run) and fails on one that points up."""

from __future__ import annotations

import ast
from pathlib import Path

import v2m

ROOT = Path(v2m.__file__).resolve().parent

# Lowest first. A module may import its own layer and those below it.
LAYERS = [
    ("errors", "version", "fsutil", "theory", "workers"),  # plain Python: errors, files, keys and scales, job pools
    ("controls", "media", "weights", "loudness", "blocks"),  # what users steer; media I/O; loading weights;
    # audio meters; audio read a block at a time
    ("analysis", "music"),  # per-second video timeline; music features
    ("models", "codecs", "render"),  # generators behind one interface; audio codecs; mixing
    ("data", "train"),  # datasets and training, beside the models
    ("evaluate",),
    ("provenance", "soundtrack"),  # what made the music; `v2m generate`: analysis -> model -> render -> mux
    ("cli", "__init__", "__main__", "app"),  # the user's entry points: the command line, the API, the web app
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, package: str):
    """``(line, imported module)`` for every import of v2m's own modules in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            for name in [target] if node.module else [f"{target}.{a.name}" for a in node.names]:
                yield node.lineno, name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "v2m":
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "v2m":
                    yield node.lineno, a.name


def test_every_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
            if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert tops <= set(RANK), sorted(tops - set(RANK))


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("v2m",) + path.relative_to(ROOT).with_suffix("").parts
        package = ".".join(parts[:-1])  # what relative imports start from (a package's __init__: itself)
        me = _layer(".".join(parts)) if path.name != "__init__.py" or len(parts) > 2 else "__init__"
        for line, target in _imports(path, package):
            if RANK[_layer(target)] > RANK[me]:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({me}) imports {target} ({_layer(target)})")
    assert not upward, "\n".join(upward)
