"""`python -m wardrobe`."""

import sys

from wardrobe.cli import main

sys.exit(main())
