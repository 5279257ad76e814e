"""Stage 1: find spec files and read each into plain data plus the position of every key and
value (`yaml_positions`). Nothing is imported here, so finding specs costs no YAML import."""
