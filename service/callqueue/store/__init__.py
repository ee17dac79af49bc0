"""Everything the service keeps in Redis: key layout, atomic scripts, and the typed store around them."""
