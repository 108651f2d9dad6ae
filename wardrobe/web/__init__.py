"""The caretaker's page: a small web application beside the command line and the daemon.

`app.create_app` builds it (one module of routes per page, Jinja templates, a static style sheet, no
scripts); `serve` runs it with waitress; `password` keeps the caretaker's password as a salted scrypt hash.
It reads state through the same modules the command line uses and never loads the camera, voice or model.
"""
