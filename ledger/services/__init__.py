"""Services: the rules the HTTP API, the web console and the CLI share."""
