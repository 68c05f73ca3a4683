"""The README's Python examples run as written (their data dirs moved under a temporary
directory)."""

import contextlib
import io
import re

from conftest import REPO


def python_blocks():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def run(code, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace('"/tmp/', '"%s/' % tmp_path), "README.md", "exec"), {})
    return out.getvalue()


def test_the_readme_has_its_python_examples():
    assert len(python_blocks()) == 2


def test_the_python_etcd_example_runs(tmp_path):
    out = run(python_blocks()[0], tmp_path)
    assert "fast" in out and "set /config/mode fast" in out


def test_the_python_etcd3_example_runs(tmp_path):
    out = run(python_blocks()[1], tmp_path)
    assert "b'/jobs/2' True" in out
    assert "3.4" in out
