"""Importing ahead: the modules are loaded by the end of the block, and a failed import neither
raises there nor prints (the code that needs the module reports it)."""

from __future__ import annotations

import subprocess
import sys


def test_modules_are_loaded_by_the_end_and_a_failure_is_left_to_the_caller() -> None:
    script = (
        "import sys\n"
        "from pipeline_kit._internal.imports import importing_meanwhile\n"
        "with importing_meanwhile('no_such_module_here', 'xml.dom.minidom'):\n"
        "    pass\n"
        "print('xml.dom.minidom' in sys.modules, 'no_such_module_here' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert (done.stdout, done.stderr) == ("True False\n", "")
