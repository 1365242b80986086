import sys

from labeling_ops.cli import main

sys.exit(main())
