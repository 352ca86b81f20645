"""``python -m reproductions.tfgridnet COMMAND --config mini|paper`` (see recipe.py)."""
from common.cli import main
from reproductions.tfgridnet.recipe import Recipe

raise SystemExit(main(Recipe()))
