"""The report's charts, inline SVG drawn from report.json's figures (no script, no network, no
dependency): thresholds.py (error of what a threshold accepts, with its band), histograms.py (kept vs
corrected predictions by confidence), audit.py (the audit and the gate), quality.py (figures with
their intervals; the promotion comparison), cost.py (where the money went). svg.py draws, figure.py
frames each chart with its caption and the table of its numbers."""
