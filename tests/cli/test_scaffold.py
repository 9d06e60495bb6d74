"""`ticketflow case new`: the files it writes make a case type that runs, whose test passes
as written and fails when the case breaks. Run in a copy of the project, so the new type
never joins this test run's registry."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.scaffold import write_case

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project's tracked files, copied."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    copy = tmp_path / "project"
    for name in tracked.splitlines():
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def run_pytest(project: Path, test: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                          cwd=project, capture_output=True, text=True, timeout=300)


def test_the_written_case_runs_and_its_test_guards_it(project: Path):
    result = CliRunner().invoke(app, ["case", "new", "warranty-claim", "--department", "returns",
                                      "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert "wrote workflows/warranty_claim.py" in result.output
    assert (project / "docs" / "cases" / "warranty-claim.md").exists()

    passed = run_pytest(project, "tests/workflows/test_warranty_claim.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "3 passed" in passed.stdout

    # Break the case: a rejected claim no longer closes it. Its own test says so.
    module = project / "workflows" / "warranty_claim.py"
    module.write_text(module.read_text().replace('await self.close(f"rejected by',
                                                 'await self.resolve(f"rejected by'))
    failed = run_pytest(project, "tests/workflows/test_warranty_claim.py")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 failed, 2 passed" in failed.stdout


def test_it_refuses_bad_names_existing_types_and_files_it_would_overwrite(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["case", "new", "Warranty Claim", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "lower-case words joined by hyphens" in result.output
    result = runner.invoke(app, ["case", "new", "support-ticket", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "exists already" in result.output
    write_case("warranty-claim", tmp_path)
    result = runner.invoke(app, ["case", "new", "warranty-claim", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "already there (use --force to overwrite)" in result.output
    assert runner.invoke(app, ["case", "new", "warranty-claim", "--root", str(tmp_path), "--force"]).exit_code == 0
    assert not (ROOT / "workflows" / "warranty_claim.py").exists()
