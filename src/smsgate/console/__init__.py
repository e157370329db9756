"""The web console: server-rendered pages for operators and account users,
served at ``/console`` by the same Starlette app as the dialects."""
