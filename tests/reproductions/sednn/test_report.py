"""sednn's table: per-noise mean +- std and the Avg. rule of evaluate.py get_stats (reproductions/sednn/report.py)."""
import numpy as np
import pytest

from reproductions.sednn.report import (
    PAPER_AVERAGE,
    PAPER_FULL_DATA,
    average_row,
    format_paper_table,
    format_sednn_table,
    per_noise_statistics,
    side_by_side,
)

ROWS = [
    {"noise_type": "babble", "pesq_nb_raw": 1.0},
    {"noise_type": "babble", "pesq_nb_raw": 2.0},
    {"noise_type": "babble", "pesq_nb_raw": 3.0},
    {"noise_type": "white", "pesq_nb_raw": 2.5},
    {"noise_type": "white", "pesq_nb_raw": 3.5},
    {"noise_type": "white", "pesq_nb_raw": None},  # a file PESQ could not score is left out, not counted as 0
]


def test_statistics_and_average_by_hand():
    statistics = per_noise_statistics(ROWS)
    # babble: mean 2, std sqrt(2/3) (ddof 0, np.std); white: mean 3, std 0.5.
    assert statistics["babble"] == pytest.approx((2.0, np.sqrt(2.0 / 3.0), 3))
    assert statistics["white"] == pytest.approx((3.0, 0.5, 2))
    mean, std = average_row(statistics)
    # Avg. = mean of the means, and the mean of the stds (not the pooled std over all 5 files).
    assert mean == pytest.approx(2.5)
    assert std == pytest.approx((np.sqrt(2.0 / 3.0) + 0.5) / 2.0)
    pooled = np.std([1.0, 2.0, 3.0, 2.5, 3.5])
    assert abs(std - pooled) > 0.05


def test_table_lines_are_sednns_format():
    lines = format_sednn_table(per_noise_statistics(ROWS), snr_db=0)
    assert lines == [
        "Noise(0dB)       PESQ",
        "-" * 33,
        "babble           2.00 +- 0.82",
        "white            3.00 +- 0.50",
        "-" * 33,
        "Avg.             2.50 +- 0.66",
    ]
    assert format_sednn_table(per_noise_statistics(ROWS), snr_db=-5)[0].startswith("Noise(-5dB)")


def test_paper_table_average_is_consistent_with_its_rows():
    # The README's Avg. 2.08 +- 0.24 is the mean of its 15 rows (means 2.081, stds 0.238).
    means = [mean for _, mean, _ in PAPER_FULL_DATA]
    stds = [std for _, _, std in PAPER_FULL_DATA]
    assert len(PAPER_FULL_DATA) == 15
    assert round(float(np.mean(means)), 2) == PAPER_AVERAGE[0] == 2.08
    assert round(float(np.mean(stds)), 2) == PAPER_AVERAGE[1] == 0.24
    assert format_paper_table()[-1] == "Avg.             2.08 +- 0.24"


def test_side_by_side_keeps_both_tables():
    left = format_sednn_table(per_noise_statistics(ROWS), 0)
    text = side_by_side(left, format_paper_table(), "ours", "paper").splitlines()
    assert text[0].startswith("ours") and text[0].rstrip().endswith("paper")
    assert "babble           2.00 +- 0.82" in text[4] and "pink             2.01 +- 0.23" in text[4]
    assert text[-1].strip() == "Avg.             2.08 +- 0.24"


def test_no_scores_is_an_error():
    with pytest.raises(ValueError, match="no scored files"):
        average_row(per_noise_statistics([{"noise_type": "white", "pesq_nb_raw": None}]))


def test_enhancement_check_reports_the_gains_against_the_targets():
    from reproductions.sednn.report import enhancement_check

    def stats(value):
        return {"white": (value, 0.1, 3)}

    per_metric = {"si_snr": stats(4.0), "noisy_si_snr": stats(0.5), "pesq_wb": stats(1.5), "noisy_pesq_wb": stats(1.2),
                  "stoi": stats(0.80), "noisy_stoi": stats(0.75)}
    line = enhancement_check(per_metric)
    assert "SI-SNR (dB) +3.500 (target >= +3)" in line and line.endswith("-> met")
    per_metric["stoi"] = stats(0.76)
    assert enhancement_check(per_metric).endswith("-> NOT met")
