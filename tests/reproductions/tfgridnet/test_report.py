"""PL minus DL paired differences, the learning curves and the robustness table
(reproductions/tfgridnet/report.py)."""
from pathlib import Path

import numpy as np
import pytest

from common.config import load_config

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"


def test_pl_minus_dl_rows_are_paired_differences_with_t_intervals():
    from scipy.stats import t as student_t

    from reproductions.tfgridnet.report import paired_differences, paired_table

    rng = np.random.default_rng(9)
    names = [f"f{index}" for index in range(6)]
    direct = [{"name": name, "pesq_wb": float(rng.uniform(1, 3)), "si_snr": float(rng.uniform(0, 10))}
              for name in names]
    # PL's rows come in another order, one file only DL scored and one invalid PL row: pairs match by name
    progressive = [{"name": row["name"], "pesq_wb": row["pesq_wb"] - 0.1 * index,
                    "si_snr": row["si_snr"] + 1.0 + 0.2 * index} for index, row in enumerate(direct[:5])][::-1]
    progressive[0]["valid"] = False  # f4
    differences = paired_differences(progressive, direct, metrics=("pesq_wb", "si_snr"))
    expected_si_snr = np.array([1.0 + 0.2 * index for index in range(4)])
    assert differences["si_snr"]["count"] == 4
    assert differences["si_snr"]["mean"] == pytest.approx(expected_si_snr.mean())
    half_width = student_t.ppf(0.975, 3) * expected_si_snr.std(ddof=1) / 2.0
    assert differences["si_snr"]["half_width"] == pytest.approx(half_width)
    assert differences["pesq_wb"]["mean"] == pytest.approx(-0.15)
    text = paired_table(differences).render()
    assert "PL - DL" in text and "1.300 ± 0.411" in text
    assert "-0.244" in text  # upstream's PESQ WB difference (2.519 - 2.763) beside ours


def test_learning_curves_are_read_from_the_training_log_and_plotted(tmp_path):
    from reproductions.tfgridnet.report import learning_curve, plot_learning_curves

    # the columns CSVLogger writes for the PL model (SI-SNR compiled on the last head only)
    log = tmp_path / "progressive" / "training_log.csv"
    log.parent.mkdir()
    log.write_text("epoch,estimate2_si_snr,loss,val_estimate2_si_snr,val_loss\n"
                   "0,-20.0,5.0,-18.5,4.5\n1,-5.0,3.0,-2.25,2.5\n2,3.0,2.0,4.0,1.75\n")
    curve = learning_curve(log, steps_per_epoch=50)
    assert curve == {"step": [50, 100, 150], "val_loss": [4.5, 2.5, 1.75], "val_si_snr": [-18.5, -2.25, 4.0]}
    path = plot_learning_curves({"progressive": curve, "direct": curve}, tmp_path / "curves" / "curves.png", 6.8)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    broken = tmp_path / "broken.csv"
    broken.write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(ValueError, match="broken.csv: expected val_loss"):
        learning_curve(broken, 50)


def test_robustness_table_checks_every_unseen_set_and_the_level_rows(tmp_path):
    from reproductions.tfgridnet.report import robustness_table

    config = load_config("mini", RECIPE_DIR)
    summary = lambda pesq, stoi, si_snr: {"pesq_wb": (pesq, 0.0, 3), "stoi": (stoi, 0.0, 3),  # noqa: E731
                                          "si_snr": (si_snr, 0.0, 3)}
    scores = {
        "unseen voice x noise +0 dB": {"noisy": summary(1.1, 0.70, 0.0), "direct": summary(1.3, 0.75, 6.0)},
        "test at -40 dBFS": {"noisy": summary(1.2, 0.72, 5.0), "direct": summary(1.29, 0.76, 9.0)},
    }
    robustness = {"scores": scores, "nominal": {"direct": summary(1.40, 0.76, 9.0)}, "items": 3, "nominal_files": 3}
    text = robustness_table(robustness, "float Keras models", tmp_path, config).render()
    assert "unseen voice x noise +0 dB: direct" in text
    assert "direct: above the noisy input on every unseen set and metric: True" in text
    # 1.29 against a nominal 1.40: more than 0.05 PESQ WB apart
    assert "of the nominal test row: False (largest gap 0.110)" in text
    assert (tmp_path / "robustness" / "results.json").exists()
