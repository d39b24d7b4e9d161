"""Stage wiring (the app layer and the Python API): evaluation -> Table 1, the two-corners experiment,
scoring folders of images, the inputs for an outside method (`inputs`) and importing its outputs
(`importer`; the imported rows are read by `imported`). The only place where data, metrics, models, the
study and the analysis meet."""
