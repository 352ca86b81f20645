"""``python -m reproductions.icse COMMAND --config mini|paper`` (see ``recipe.py``)."""
from common.cli import main
from reproductions.icse.recipe import Recipe

if __name__ == "__main__":
    raise SystemExit(main(Recipe()))
