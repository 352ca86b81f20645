"""The converter's messages and the verdicts on the quantised exports (reproductions/tfgridnet/export.py)."""


def test_converter_errors_are_reported_once_per_distinct_line():
    from reproductions.tfgridnet.export import distinct_lines

    message = ("RuntimeError: Quantization to 16x8-bit not yet supported for op: 'SQUARE'.\n"
               "Quantization to 16x8-bit not yet supported for op: 'POW'.\n"
               "Quantization to 16x8-bit not yet supported for op: 'SQUARE'.\n")
    assert distinct_lines(message) == ("RuntimeError: Quantization to 16x8-bit not yet supported for op: 'SQUARE'. | "
                                       "Quantization to 16x8-bit not yet supported for op: 'POW'.")
    assert distinct_lines("x" * 400, limit=20) == "x" * 17 + "..."


def test_quantised_exports_are_judged_against_float_si_snr():
    from reproductions.tfgridnet.export import int8_usability

    export = {
        "direct_float32": {"converted": True, "scores": {"si_snr": [8.0, 1.0, 6]}},
        "direct_dynamic": {"converted": True, "scores": {"si_snr": [7.7, 1.0, 6]}},
        "direct_int8": {"converted": True, "scores": {"si_snr": [-3.0, 1.0, 6]}},
        "direct_int16x8": {"converted": False, "error": "RuntimeError: op POW"},
        "progressive_int8": {"converted": True, "scores": {"si_snr": [7.0, 1.0, 6]}},
        "other_float32": {"converted": True, "scores": {"si_snr": [-30.85, 1.0, 6]}},
        "other_int8": {"converted": True, "scores": {"si_snr": [-30.04, 1.0, 6]}},
    }
    verdicts = int8_usability(export)
    assert verdicts["direct_float32"] == "reference"
    assert verdicts["direct_dynamic"] == "usable: SI-SNR 0.30 dB below float32"
    assert verdicts["direct_int8"] == "unusable: SI-SNR 11.00 dB below float32"
    assert verdicts["other_int8"] == "unusable: SI-SNR 0.81 dB above float32"
    assert verdicts["direct_int16x8"] == "unusable: does not convert"
    assert verdicts["progressive_int8"].startswith("unknown")
