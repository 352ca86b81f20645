"""``python -m reproductions.crn COMMAND --config mini|paper`` (see ``recipe.py``)."""
from common.cli import main
from reproductions.crn.recipe import Recipe

if __name__ == "__main__":
    raise SystemExit(main(Recipe()))
