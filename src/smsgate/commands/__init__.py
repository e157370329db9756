"""The ``smsgate`` command's sub-commands, one module per group (``cli.py`` assembles them)."""
