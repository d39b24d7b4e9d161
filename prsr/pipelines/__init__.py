"""Stage wiring (the app layer and the Python API): evaluation -> Table 1, the two-corners experiment,
scoring folders of images. The only place where data, metrics, models, the study and the analysis meet."""
