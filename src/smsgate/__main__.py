"""``python -m smsgate`` is the ``smsgate`` command."""

from smsgate.cli import main

main()
