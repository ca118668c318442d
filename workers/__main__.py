"""`python -m workers`: the same as `image-origin worker`."""

import sys

from origin.launch import main

sys.exit(main(["worker", *sys.argv[1:]]))
