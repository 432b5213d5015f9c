"""Entry point: `python main.py` serves the web UI; `python main.py --help` lists the commands."""
import sys

from i2v.cli import main

if __name__ == "__main__":
    sys.exit(main())
