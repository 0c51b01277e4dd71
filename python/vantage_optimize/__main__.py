"""`python3 -m vantage_optimize`: see the package's docstring; `vantage models optimize` is the command users run."""

import sys

from .quantize import main

sys.exit(main(sys.argv[1:]))
