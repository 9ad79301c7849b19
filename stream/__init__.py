"""Deployments: config, camera sources, tracking, sinks, the HTTP server and the CLI."""
