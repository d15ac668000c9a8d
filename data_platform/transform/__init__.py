"""The transformation layer: the dbt project in `transform/` run on the platform's database.

from data_platform.transform import run_transform
result = run_transform(["pedestrian_top10_daily+"])
print(result.render())
"""

from __future__ import annotations

from data_platform.transform.dbt import TransformError, project_dir, run_transform
from data_platform.transform.result import NodeResult, TransformResult

__all__ = [
    "NodeResult",
    "TransformError",
    "TransformResult",
    "project_dir",
    "run_transform",
]
