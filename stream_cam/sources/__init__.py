"""Sources: where frames come from (image files, built-in photos; video and cameras later)."""
