"""Small core functions the Dagster assets call that belong to no single stage: dataset summaries,
previews, the training-set manifest and its quality checks, and MLflow run bookkeeping. No Dagster here."""
