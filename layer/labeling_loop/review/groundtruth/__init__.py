"""SageMaker Ground Truth review backend: labeling jobs (`jobs`), the label-verification task's
Lambdas (`task_lambdas`) and the collection of their output (`collect`)."""
