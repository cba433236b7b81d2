"""``python -m frontdesk``: the command line."""

from frontdesk.cli import main

main()
