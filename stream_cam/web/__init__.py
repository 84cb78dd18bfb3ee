"""The browser view: a broadcaster between the pipeline and viewers, and the web server."""
