"""common.figures: the Agg backend and a written, closed PNG."""
import numpy as np

from common.figures import pyplot, save_figure


def test_pyplot_draws_without_a_display():
    import matplotlib

    pyplot()
    assert matplotlib.get_backend().lower() == "agg"


def test_save_figure_writes_a_png_of_the_requested_resolution_and_closes_the_figure(tmp_path):
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(3, 2))
    axis.plot(np.arange(10))
    path = save_figure(figure, tmp_path / "nested" / "curve.png", dpi=50)
    assert path == tmp_path / "nested" / "curve.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = plt.imread(path).shape[1::-1]
    assert (width, height) == (150, 100)  # 3 x 2 inches at 50 dots per inch
    assert figure.number not in plt.get_fignums()
