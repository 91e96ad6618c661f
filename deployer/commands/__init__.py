"""One module per subcommand: each exposes ``run(request, out) -> int``, its typed request
made by ``cli.py`` (``deployer.requests``)."""
