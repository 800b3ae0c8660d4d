"""The design's promise: a chapter runs with papermill directly, with parameters, as the README's
"Run a chapter with papermill" recipe says (jupytext to .ipynb, then papermill with -p and -y)."""
import subprocess
import sys
from pathlib import Path

import nbformat

from advbook.paths import NOTEBOOKS
from advbook.reporting import METADATA_KEY

BIN = Path(sys.executable).parent
# the smoke profile, shrunk further: one defense, one seed, one epoch (the notebook still runs whole)
OVERRIDES = "overrides: {defenses: [standard, fgsm], seeds: [0], epochs: 1, n_eval: 50, autoattack_n: 0, " \
            "steps_sweep: [1, 2], eps_factors: [0.0, 1.0], eps: 0.05}"


def test_papermill_runs_a_chapter_with_its_parameters(tmp_path):
    source = tmp_path / "primer.ipynb"
    subprocess.run([BIN / "jupytext", "--to", "ipynb", NOTEBOOKS / "primer.py", "-o", source], check=True,
                   capture_output=True)
    executed = tmp_path / "primer.out.ipynb"
    run = subprocess.run([BIN / "papermill", source, executed, "--cwd", NOTEBOOKS, "-k", "python3",
                          "-p", "profile", "smoke", "-y", OVERRIDES, "--no-progress-bar"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    nb = nbformat.read(executed, as_version=4)
    assert nb.metadata.papermill.parameters == {"profile": "smoke", "overrides": {
        "defenses": ["standard", "fgsm"], "seeds": [0], "epochs": 1, "n_eval": 50, "autoattack_n": 0,
        "steps_sweep": [1, 2], "eps_factors": [0.0, 1.0], "eps": 0.05}}
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("text") or o.get("data", {}).get("text/markdown", "")) for o in outputs)
    # the parameters reached the run: the baselines name its eps and epochs, the evaluation its images
    assert "epochs 1" in text and "eps 0.05" in text and "50 test images" in text
    # and the claims cell carries the run's scale for What holds
    payloads = [o["metadata"][METADATA_KEY] for o in outputs if METADATA_KEY in o.get("metadata", {})]
    assert [p["scale"]["profile"] for p in payloads] in ([], ["smoke"])
