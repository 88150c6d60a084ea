"""`python -m lifelong.cli`, as `python -m lifelong` and the `lifelong` command."""

import sys

from . import main

sys.exit(main())
