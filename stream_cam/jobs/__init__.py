"""Jobs: what each CLI command does, wired from sources, engine, render and sinks."""
