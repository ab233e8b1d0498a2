"""The names of the files the pipeline writes, in one place: the course's names where the course has them.

In ``output_folder_path``: FINAL_DATA_NAME, INGESTED_FILES_NAME. In ``output_model_path``: MODEL_NAME,
METADATA_NAME, SCORE_NAME, REFERENCE_NAME (the training reference for data drift), SNAPSHOT_NAME (diagnostics),
CONFUSION_MATRIX_NAME, REPORT_PDF_NAME, API_RETURNS_NAME, RISK_LIST_NAME. In each deployed version: the model's
files plus DEPLOYMENT_RECORD_NAME. Standard library only (names, no code): the cheap tick reads some of them.
"""

FINAL_DATA_NAME = "finaldata.csv"
INGESTED_FILES_NAME = "ingestedfiles.txt"
MODEL_NAME = "trainedmodel.pkl"
METADATA_NAME = "trainedmodel.json"
SCORE_NAME = "latestscore.txt"
REFERENCE_NAME = "trainingreference.json"
SNAPSHOT_NAME = "diagnostics.json"
CONFUSION_MATRIX_NAME = "confusionmatrix.png"
REPORT_PDF_NAME = "report.pdf"
API_RETURNS_NAME = "apireturns.txt"
RISK_LIST_NAME = "risklist.csv"
DEPLOYMENT_RECORD_NAME = "deployment.json"
