import sys

from prsr.cli import main

sys.exit(main())
