"""`make demo`: the whole asset graph for the synthetic `sample` dataset, in one Dagster run.

The run goes into the persistent instance under `$DUALFORCE_HOME/dagster`, so `make ui` afterwards shows
its materialisations, check results and logs; MLflow holds the training and evaluation runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from assets import ALL_ASSETS, ALL_CHECKS
from dualforce_core import paths
from dualforce_core.cli.demo_cmd import add_demo_args
from dualforce_core.demo_inputs import DEMO_DATASET, describe, prepare_demo_inputs
from dualforce_core.errors import UserError
from pipelines.resources import REPO_ROOT, DualForceSettings, default_resources
from pipelines.ui import prepare_dagster_home

DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key == dg.AssetKey(key):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def _summary(result: dg.ExecuteInProcessResult) -> str:
    clips, checkpoint, evaluation = (
        _metadata(result, k) for k in ("clips", "dualforce_checkpoint", "evaluation")
    )
    checks = ", ".join(
        f"{c.check_name}={'pass' if c.passed else 'FAIL'}" for c in result.get_asset_check_evaluations()
    )
    metrics = evaluation.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    report_dir = Path(str(evaluation.get("report_dir", ".")))
    strips = sorted(report_dir.glob("samples/*_strip.png"))
    return "\n".join(
        [
            f"mouth-audio r on held-out synthetic people (the mouth read from the decoded pixels vs the "
            f"driving audio's loudness): generated {metrics.get('mouth_audio_r', 'n/a')}, ground truth "
            f"{metrics.get('gt_mouth_audio_r', 'n/a')}",
            f"side by side (ground truth | generated): {report_dir / 'samples'}; frame strip "
            f"{strips[0] if strips else 'n/a'}",
            f"clips: {clips.get('rows')} (table {clips.get('table_uri')}; preview {clips.get('preview_path')})",
            f"checks: {checks}",
            f"model: {checkpoint.get('final_model')} (step {checkpoint.get('step')}, loss {checkpoint.get('last_loss')})",
            f"evaluation report: {evaluation.get('report_dir')}/report.md",
            f"metrics: {evaluation.get('metrics')}",
            f"MLflow runs: training {checkpoint.get('mlflow_run_id')}, evaluation {evaluation.get('mlflow_run_id')}",
            "browse it all: `make ui` → Dagster http://127.0.0.1:3000 (asset graph, run logs, checks), "
            "MLflow http://127.0.0.1:5000",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_demo_args(parser)
    parser.add_argument(
        "--config", default=str(DEMO_CONFIG), help="pipeline config (default: configs/demo.yaml)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(f"DualForce demo — data root {paths.home()}")
    try:
        print(describe(prepare_demo_inputs(args.clips, args.seconds, args.size, args.seed, args.identities)))
    except UserError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 2
    with dg.DagsterInstance.from_config(str(prepare_dagster_home())) as instance:
        if not instance.has_dynamic_partition("datasets", DEMO_DATASET):
            instance.add_dynamic_partitions("datasets", [DEMO_DATASET])
        print(
            f"materialising every asset for partition {DEMO_DATASET!r} (Dagster instance {instance.root_directory})"
        )
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            partition_key=DEMO_DATASET,
            instance=instance,
            resources={
                **default_resources(),
                "settings": DualForceSettings(config_path=args.config, progress=True),
            },
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            tags={"dualforce/demo": "true"},
            raise_on_error=False,
        )
    minutes = (time.monotonic() - started) / 60
    if not result.success:
        failed = [event.step_key for event in result.get_step_failure_events()]
        print(
            f"\ndemo FAILED after {minutes:.1f} min in step(s) {', '.join(map(str, failed)) or '?'}",
            file=sys.stderr,
        )
        print(f"the run's logs: `make ui` → Runs → {result.run_id}", file=sys.stderr)
        return 1
    print(f"\ndemo finished in {minutes:.1f} min (Dagster run {result.run_id})")
    print(_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
