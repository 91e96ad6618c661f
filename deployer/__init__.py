"""Deploy Docker images built in GitLab CI to your own Docker hosts."""

__version__ = "0.1.0"
