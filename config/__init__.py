"""zapvisor config package."""
