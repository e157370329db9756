"""What an operator sees of a running gateway: logs, metrics and health.

``logs`` sets up logging (level, format, masking of phone numbers);
``events`` is the one place each notable event is logged and counted;
``metrics`` holds the process's counters and renders ``/metrics`` with the
cluster-wide gauges read from the database; ``health`` answers ``/healthz``
and ``/readyz``.
"""
