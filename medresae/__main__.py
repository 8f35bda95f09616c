"""`python -m medresae` runs the command line (see medresae_cli)."""

import sys

from medresae_cli import main

if __name__ == "__main__":
    sys.exit(main())
