"""`python -m origin`: the same as `image-origin serve`."""

import sys

from .cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
