"""The saved test-set and robustness scores read back for the tables (reproductions/tfgridnet/scoring.py)."""
import json

import numpy as np
import pytest


def test_table_inputs_come_back_from_the_saved_scores(tmp_path):
    """evaluate's test-set scores (scores/<system>.json) and robustness scores (scores/robustness/) give the
    table its evaluation summary, the robustness scores in set order and the nominal summaries over the first
    test files, which the level rows replay."""
    from common.evaluation import save_scores
    from common.metrics import summarize
    from reproductions.tfgridnet.scoring import load_evaluation, load_robustness

    rng = np.random.default_rng(0)
    rows = {system: [{"name": f"{index:04d}_u", "pesq_wb": float(rng.uniform(1, 3)), "si_snr": float(rng.normal(5)),
                      "noisy_pesq_wb": 1.1 + index, "noisy_si_snr": float(index)} for index in range(4)]
            for system in ("direct", "progressive")}
    settings = {"items": 2, "nominal_files": 2}
    for system, system_rows in rows.items():
        summary = {key: value for key, value in summarize(system_rows).items() if not key.startswith("noisy_")}
        save_scores(tmp_path, system, system_rows, summary, robustness=settings)
    noisy_rows = [{"name": row["name"], "pesq_wb": row["noisy_pesq_wb"], "si_snr": row["noisy_si_snr"]}
                  for row in rows["direct"]]
    save_scores(tmp_path, "noisy", noisy_rows, summarize(noisy_rows))
    assert load_robustness(tmp_path) is None  # not scored on the robustness sets yet
    for index, set_name in enumerate(("unseen voice x noise -5 dB", "test at -40 dBFS")):
        for system in ("noisy", "direct"):  # progressive left out: only the systems scored there
            folder = tmp_path / "scores" / "robustness" / set_name.replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{system}.json").write_text(json.dumps(
                {"set": set_name, "set_index": index, "system": system, "rows": [],
                 "summary": {"pesq_wb": [1.5 + index, 0.1, 2]}}))

    evaluation = load_evaluation(tmp_path)
    assert evaluation["files"] == 4
    assert evaluation["noisy"]["pesq_wb"][0] == pytest.approx(np.mean([1.1, 2.1, 3.1, 4.1]))
    assert evaluation["progressive"]["si_snr"][0] == pytest.approx(np.mean([row["si_snr"] for row in
                                                                           rows["progressive"]]))
    assert "noisy_pesq_wb" not in evaluation["direct"]
    assert load_evaluation(tmp_path, "_tflite") is None and load_robustness(tmp_path, "_tflite") is None

    robustness = load_robustness(tmp_path)
    assert list(robustness["scores"]) == ["unseen voice x noise -5 dB", "test at -40 dBFS"]
    assert list(robustness["nominal"]) == ["direct"]
    assert robustness["nominal"]["direct"]["pesq_wb"][2] == 2
    assert robustness["nominal"]["direct"]["pesq_wb"][0] == pytest.approx(
        np.mean([row["pesq_wb"] for row in rows["direct"][:2]]))
    assert (robustness["items"], robustness["nominal_files"]) == (2, 2)
