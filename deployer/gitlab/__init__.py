"""GitLab adapter: CI context from predefined variables, merge metadata, gates and notes.

python-gitlab is imported only inside the functions that call the API, so importing
this package stays cheap.
"""
