"""`python -m ai4hep.cli`: the same as the `ai4hep` command."""

import sys

from ai4hep.cli import main

sys.exit(main())
