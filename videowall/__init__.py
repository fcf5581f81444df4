"""Wall layouts, tiles and the wall pages."""
