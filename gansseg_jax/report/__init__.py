"""The `report` stage: one self-contained HTML page (and markdown) of a run."""
