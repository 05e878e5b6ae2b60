"""command: any executable as a gate; exit 0 passes, anything else denies with its output tail.

It runs with the release in its environment (PIPELINE_KIT_RELEASE_ID, PIPELINE_KIT_ENVIRONMENT,
PIPELINE_KIT_SUBJECTS, PIPELINE_KIT_EVIDENCE_DIR), scrubbed of secrets (`pass-env` names more).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from pydantic import Field

from pipeline_kit._internal.proc import child_environment, run_bounded
from pipeline_kit.config import EnvName
from pipeline_kit.gates.interface import Gate, Options, Outcome, PromotionContext, denied, error, passed


class CommandOptions(Options):
    run: str | list[str] = Field(min_length=1)
    timeout: float = Field(default=300.0, gt=0, le=86400, strict=True, allow_inf_nan=False)
    pass_env: list[EnvName] = Field(default_factory=list)  # variables the command may see


def release_environment(context: PromotionContext, pass_env: Sequence[str] = ()) -> dict[str, str]:
    """A child's environment for a release: scrubbed of secrets, plus what it is about."""
    return {
        **child_environment(os.environ, pass_env, context.config.secret_variables),
        "PIPELINE_KIT_RELEASE_ID": context.release.id,
        "PIPELINE_KIT_ENVIRONMENT": context.environment,
        "PIPELINE_KIT_SUBJECTS": "".join(f"{s.sha256}  {s.name}\n" for s in context.release.subjects),
        "PIPELINE_KIT_DIGEST": f"sha256:{context.release.subjects[0].sha256}",
        "PIPELINE_KIT_EVIDENCE_DIR": str(context.evidence.root),
    }


class CommandGate(Gate):
    name = "command"
    options_model = CommandOptions
    options: CommandOptions

    def evaluate(self, context: PromotionContext) -> Outcome:
        command = self.options.run
        shown = command if isinstance(command, str) else " ".join(command)
        try:
            result = run_bounded(
                command,
                cwd=context.workdir,
                env=release_environment(context, self.options.pass_env),
                timeout=self.options.timeout,
                text=True,
            )
        except subprocess.TimeoutExpired:
            return error(f"{shown}: timed out after {self.options.timeout:g}s")
        except OSError as exc:
            return error(f"{shown}: could not start: {exc.strerror}")
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        if result.returncode != 0:
            return denied(
                f"{shown} exited {result.returncode}: {' | '.join(tail) or '(no output)'}",
                exit_code=result.returncode,
            )
        return passed(f"{shown} exited 0", exit_code=0)
