"""Stage 4: render a plan's artifacts from Jinja templates, escaped per target language."""
