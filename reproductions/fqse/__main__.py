from common.cli import main
from reproductions.fqse.recipe import Recipe

raise SystemExit(main(Recipe()))
