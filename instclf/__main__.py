"""``python -m instclf``: the ``instclf`` command (:func:`instclf.cli.main`) without its script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
