"""zapvisor tests; mirrors the packages."""
