"""The cloud itself: the template deployed into moto, the Lambda runtime, the botocore hooks that
answer the emulated services, the interpreter compensations and faults on demand."""
