"""customer-equity: the one import namespace of the pipeline.

The repository keeps `flows/`, `transforms/`, `schemas/` and `sql/` at its top
level; they are imported as `customer_equity.flows` and so on, never as
top-level names, so a folder of the same name on `sys.path` (a work-pool
worker's working directory) cannot shadow them. The wheel maps those folders
into this package (pyproject.toml, `force-include`); in a checkout (an editable
install, or Python started in the repository) the repository root joins this
package's search path instead, so both resolve to the same files.
"""

from pathlib import Path

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "flows" / "nightly.py").is_file():
    __path__.append(str(_checkout))
