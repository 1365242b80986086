"""The services the local cloud adds to moto: emulated Rekognition Custom Labels and SageMaker Ground
Truth (each an `EmulatedService` answering `handle(operation, params) -> dict` or raising
`ServiceError` like the service), and the real Label Studio server with emulated reviewers."""
