"""Package data: the JSON Schema of deploy.yml (shipped inside the deployer package)."""
