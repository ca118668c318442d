"""`python -m origin`: the same as `image-origin serve`."""

import sys

from .launch import main

sys.exit(main(["serve", *sys.argv[1:]]))
