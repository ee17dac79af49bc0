"""One module per concern; each check takes the Context and returns one or more CheckResults."""
